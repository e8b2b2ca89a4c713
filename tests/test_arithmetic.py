"""quantize=int8|bf16 in predict, evaluate and serve (seqtasks/runtime/arithmetic.py): the modules
really change, answers stay those of fp32 on a model with clear margins, and mistakes are one line.
(Translation's search under both is checked on a learnt model in tests/tasks/test_translation_task.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import command
from torch.ao.nn.quantized import dynamic

from seqtasks.errors import ConfigError
from seqtasks.runtime import arithmetic
from seqtasks.runtime.arithmetic import int8_engine, output_rows, use_arithmetic
from seqtasks.runtime.build import Inference, load_task

NAMES = "Ivanov3\nGarcia7\nIvanov12\n"


def test_int8_quantizes_the_linear_and_recurrent_layers(tiny_classifier):
    task = load_task(tiny_classifier / "run" / "checkpoints" / "best.ckpt", Inference(quantize="int8"))
    kinds = {type(module) for module in task.modules()}
    assert dynamic.Linear in kinds and (dynamic.LSTM in kinds or dynamic.GRU in kinds)
    assert not {torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU} & kinds  # nothing left in fp32


def test_bf16_casts_the_weights_and_runs_the_inference_blocks_under_autocast(tiny_classifier):
    task = use_arithmetic(load_task(tiny_classifier / "run" / "checkpoints" / "best.ckpt"), "bf16")
    layer = next(module for module in task.modules() if isinstance(module, torch.nn.Linear))
    assert layer.weight.dtype == torch.bfloat16  # cast once, not at every call
    with task.inference():  # autocast casts float inputs (images, carried states) to the weights' type
        assert layer(torch.randn(2, layer.in_features)).dtype == torch.bfloat16


@pytest.mark.parametrize("quantize", ["int8", "bf16"])
def test_predict_and_evaluate_answer_as_fp32_does(tiny_classifier, quantize, tmp_path):
    ckpt = tiny_classifier / "run" / "checkpoints" / "best.ckpt"
    fp32 = command("seqtasks.predict", f"ckpt={ckpt}", "input=-", stdin=NAMES).stdout.splitlines()
    cheap = command("seqtasks.predict", f"ckpt={ckpt}", "input=-", f"quantize={quantize}", stdin=NAMES)
    rows = [line.split("\t") for line in cheap.stdout.splitlines()]
    assert [label for label, _ in rows] == [line.split("\t")[0] for line in fp32]
    for (_, probability), line in zip(rows, fp32, strict=True):
        assert float(probability) == pytest.approx(float(line.split("\t")[1]), abs=0.05)
    metrics = {}
    for name, options in {"fp32": [], quantize: [f"quantize={quantize}"]}.items():
        output = tmp_path / f"{name}.json"
        command("seqtasks.evaluate", f"ckpt={ckpt}", f"output={output}", *options)
        metrics[name] = json.loads(output.read_text())
    assert metrics[quantize]["test/acc"] == pytest.approx(metrics["fp32"]["test/acc"], abs=0.05)


@pytest.mark.parametrize(
    ("quantize", "device", "message"),
    [("int4", "cpu", "quantize=int4: choose int8 | bf16"), ("int8", "cuda", "quantize=int8 runs on the CPU")],
)
def test_mistakes_are_config_errors(tiny_classifier, quantize, device, message):
    task = load_task(tiny_classifier / "run" / "checkpoints" / "best.ckpt")
    with pytest.raises(ConfigError, match=message):
        use_arithmetic(task, quantize, device)


def test_int8_weights_are_packed_for_onednn_only_where_the_cpu_has_amx_int8_tiles():
    assert int8_engine({"avx512_vnni", "amx_int8", "amx_tile"}) == "onednn"
    assert int8_engine({"avx512_vnni", "avx512_bf16"}) == torch.backends.quantized.engine  # PyTorch's own choice


class GruThenLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(12, 32, num_layers=2, batch_first=True)
        self.output = torch.nn.Linear(32, 50)

    def forward(self, x):
        return self.output(self.rnn(x)[0])


@pytest.mark.parametrize("flags", [set(), {"amx_int8"}], ids=["default engine", "onednn"])
def test_int8_answers_close_to_fp32_and_leaves_the_engine_as_it_was(flags, monkeypatch):
    monkeypatch.setattr(arithmetic, "cpu_flags", lambda: flags)
    torch.manual_seed(0)
    model, x = GruThenLinear().eval(), torch.randn(3, 7, 12)
    with torch.no_grad():
        fp32 = model(x)
        before = torch.backends.quantized.engine
        int8 = use_arithmetic(model, "int8")(x)
    assert torch.backends.quantized.engine == before  # set only while the weights were packed
    assert (int8 - fp32).abs().max() < 0.05 * fp32.abs().max()


@pytest.mark.parametrize("flags", [set(), {"amx_int8"}], ids=["default engine", "onednn"])
def test_an_int8_layer_cut_to_some_rows_computes_those_rows_of_the_whole_layer(flags, monkeypatch):
    monkeypatch.setattr(arithmetic, "cpu_flags", lambda: flags)
    torch.manual_seed(0)
    layer = use_arithmetic(torch.nn.Sequential(torch.nn.Linear(16, 40)), "int8")[0]
    rows, x = torch.tensor([39, 3, 0, 17]), torch.randn(5, 16)
    with torch.no_grad():
        torch.testing.assert_close(output_rows(layer, rows)(x), layer(x)[:, rows])
