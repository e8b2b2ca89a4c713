"""backend=onnxruntime (seqtasks/onnx/backend.py): predict, evaluate and serve on a directory
exported with format=onnx give the lines and metrics that the PyTorch backend gives on it, and the
ONNX sessions did the work: a spy on OnnxGraph.__call__ records which graphs ran (a backend that
fell back to PyTorch would pass the comparisons alone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import command
from onnx_models import exported
from tasks.test_captioning_task import write_toy
from tasks.test_classification_task import NAMES
from tasks.test_tagging_task import random_sentences
from tasks.test_translation_task import reversal_pairs

from seqtasks.onnx.runtime import OnnxGraph
from seqtasks.runtime.build import Inference

pytest.importorskip("onnxruntime")
TOLERANCE = 1e-4


@pytest.fixture
def graph_runs(monkeypatch) -> set[str]:
    """The first input name of every graph that onnxruntime ran during the test (which graph it was)."""
    runs: set[str] = set()
    run = OnnxGraph.__call__

    def spy(graph: OnnxGraph, tensors):
        runs.add(graph.inputs[0])
        return run(graph, tensors)

    monkeypatch.setattr(OnnxGraph, "__call__", spy)
    return runs


def input_lines(kind: str, directory: Path) -> list[str]:
    """A few input lines of the kind, an empty one among them (it must keep its place)."""
    if kind == "classifier":
        return [*NAMES["Russian"][:3], "", *NAMES[next(reversed(NAMES))][:3]]
    if kind == "tagger":
        return [" ".join(word for word, _ in sentence) for sentence in random_sentences(4, 9)] + ["", "unseenword"]
    if kind == "language_model":
        return ["First", "All:"]  # primes: read through the step graph, one token at a time
    if kind == "translator":
        return [source for source, _ in reversal_pairs(6, 3)] + [""]
    write_toy(directory, 4, seed=5)
    return ["0.png", "", "1.png", "2.png", "3.png"]  # relative to the input file


# kind -> (its graphs' first inputs, predict's options); each option list is one comparison
PREDICTED = {
    "classifier": ({"tokens"}, [[]]),
    "tagger": ({"words"}, [[]]),
    "language_model": ({"tokens"}, [["decoding=greedy", "length=30"]]),
    "translator": ({"source", "tokens"}, [["decoding=greedy"], ["decoding=beam", "decoding.beam_size=3"]]),
    "captioner": ({"inputs", "grid", "tokens"}, [["decoding=greedy"], ["decoding=beam", "guidance=2"]]),
}


@pytest.mark.parametrize("kind", sorted(PREDICTED))
def test_predict_on_onnxruntime_writes_pytorchs_lines(kind, tmp_path, graph_runs):
    _, model = exported(kind)
    source = tmp_path / "input.txt"
    source.write_text("\n".join(input_lines(kind, tmp_path)) + "\n")
    graphs, option_lists = PREDICTED[kind]
    for options in option_lists:
        torch_lines = command("seqtasks.predict", f"ckpt={model}", f"input={source}", *options).stdout
        assert not graph_runs
        onnx_lines = command("seqtasks.predict", f"ckpt={model}", f"input={source}", "backend=onnxruntime", *options)
        assert onnx_lines.stdout == torch_lines, options
        assert graph_runs == graphs
        graph_runs.clear()


@pytest.mark.parametrize("kind", ["classifier", "translator"])
def test_evaluate_on_onnxruntime_gives_pytorchs_metrics(kind, tmp_path, graph_runs):
    _, model = exported(kind)
    torch_metrics = json.loads(command("seqtasks.evaluate", f"ckpt={model}", f"output={tmp_path / 't.json'}").stdout)
    onnx = command("seqtasks.evaluate", f"ckpt={model}", "backend=onnxruntime", f"output={tmp_path / 'o.json'}")
    onnx_metrics = json.loads(onnx.stdout)
    assert graph_runs == PREDICTED[kind][0]
    assert onnx_metrics.keys() == torch_metrics.keys()
    for key, value in torch_metrics.items():
        if isinstance(value, float):
            assert onnx_metrics[key] == pytest.approx(value, abs=TOLERANCE), key
        else:
            assert onnx_metrics[key] == value, key


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["backend=onnxruntime"], "format=onnx"),
        (["backend=tensorrt"], "backend=tensorrt: choose torch | onnxruntime"),
        (
            ["backend=onnxruntime", "device=cuda"],
            # Without a GPU, device=cuda is refused first, whatever the backend.
            "backend=onnxruntime runs on the CPU: set device=cpu"
            if torch.cuda.is_available()
            else "device=cuda: this PyTorch",
        ),
        (["backend=onnxruntime", "quantize=int8"], "which backend=onnxruntime does not run"),
    ],
    ids=["checkpoint", "unknown", "cuda", "quantized"],
)
def test_backend_mistakes_are_one_line_errors(options, message, tmp_path):
    ckpt, model = exported("classifier")
    source = tmp_path / "input.txt"
    source.write_text("Ivanov\n")
    given = ckpt if options == ["backend=onnxruntime"] else model
    result = command("seqtasks.predict", f"ckpt={given}", f"input={source}", *options, check=False)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_directory_without_graphs_is_refused(tmp_path):
    ckpt, _ = exported("classifier")
    command("seqtasks.export", f"ckpt={ckpt}", f"output={tmp_path / 'plain'}")
    result = command("seqtasks.evaluate", f"ckpt={tmp_path / 'plain'}", "backend=onnxruntime", check=False)
    assert result.returncode == 2 and "has none: export it with" in result.stderr and "format=onnx" in result.stderr


def test_serve_on_onnxruntime_answers_predicts_line(graph_runs):
    """The server and its inference worker as `python -m seqtasks.serve backend=onnxruntime` builds
    them, in this process (so that the spy sees the worker's graphs; a real server takes ~40 s to
    start on one core, and tests/test_serve.py covers the HTTP around the same API)."""
    pytest.importorskip("litserve", reason="the server needs LitServe: pip install -e '.[serve]'")
    from seqtasks.serving.schema import Limits, PredictRequest
    from seqtasks.serving.server import build_server

    _, model = exported("translator")
    line = reversal_pairs(1, 4)[0][0]
    beam = ["decoding=beam", "decoding.beam_size=3"]
    expected = command("seqtasks.predict", f"ckpt={model}", "input=-", *beam, stdin=line)
    server = build_server(str(model), [], Limits(), inference=Inference(backend="onnxruntime"))
    assert server.model_metadata["backend"] == "onnxruntime"  # /info's model entry
    graph_runs.clear()  # build_server loads the model once for /info: only the worker's runs count
    (api,) = server.litapi_connector  # LitServe's own list of the server's APIs
    api.setup("cpu")  # what each inference worker does first
    answer = api.predict(api.decode_request(PredictRequest(input=line, beam_size=3)))
    assert answer["output"] + "\n" == expected.stdout
    assert graph_runs == {"source", "tokens"}


def test_serve_refuses_a_checkpoint_before_it_serves():
    pytest.importorskip("litserve", reason="the server needs LitServe: pip install -e '.[serve]'")
    from test_serve import free_port

    ckpt, _ = exported("classifier")
    result = command("seqtasks.serve", f"ckpt={ckpt}", "backend=onnxruntime", f"port={free_port()}", check=False)
    assert result.returncode == 2 and "format=onnx" in result.stderr and len(result.stderr.splitlines()) == 1
