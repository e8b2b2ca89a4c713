"""`seqtasks.export format=onnx`: each exported graph, run by onnxruntime, against the PyTorch model
it came from (the independent reference): logits within 1e-4 on the same inputs, and the same greedy
and beam-search output when seqtasks.decoding drives the ONNX step (OnnxStep) instead of the model's."""

from __future__ import annotations

import pytest
import torch
from conftest import command
from onnx_models import exported
from tasks.test_captioning_task import FEATURES, untrained, write_toy
from tasks.test_tagging_task import random_sentences
from tasks.test_translation_task import reversal_pairs

from seqtasks.data.images import load_input, stack_inputs
from seqtasks.data.tagging import CollateSentences, FormTable
from seqtasks.decoding import BeamSearch, Greedy
from seqtasks.errors import DataError
from seqtasks.onnx.export import export_onnx
from seqtasks.onnx.graphs import padded_example
from seqtasks.onnx.runtime import OnnxGraph, OnnxStep, onnx_graphs
from seqtasks.runtime.build import load_task
from seqtasks.runtime.model_dir import read_onnx
from seqtasks.tensors import PER_INPUT

pytest.importorskip("onnxruntime")
TOLERANCE = 1e-4


def test_classifier_logits_match_pytorch_on_variable_lengths():
    ckpt, model = exported("classifier")
    task = load_task(ckpt)
    manifest, graphs = onnx_graphs(model)
    assert manifest["kind"] == "classifier"
    for batch, steps in ((5, 9), (1, 3), (7, 12)):  # none of them the traced example's (3, 5)
        tokens, lengths = padded_example(batch, steps, len(task.text_tokenizer), task.text_tokenizer.vocab.pad_id)
        lengths = lengths[torch.randperm(batch)]  # unsorted, as predict batches are not
        tokens = tokens.masked_fill(torch.arange(steps)[None] >= lengths[:, None], task.text_tokenizer.vocab.pad_id)
        onnx_logits = graphs["classifier"]({"tokens": tokens, "lengths": lengths})["logits"]  # (B, C)
        with torch.no_grad():
            torch_logits = task(tokens, lengths)
        assert (onnx_logits - torch_logits).abs().max() < TOLERANCE


def test_the_ngram_bag_hashes_in_the_graph_as_in_pytorch():
    ckpt, _ = exported("classifier")
    task = load_task(ckpt)
    torch.nn.init.normal_(task.ngrams.project.weight)  # near zero after 3 steps: make its logits count
    files, manifest = export_onnx(task)
    graph = OnnxGraph(files[manifest["graphs"]["classifier"]["file"]])
    tokens, lengths = padded_example(6, 11, len(task.text_tokenizer), task.text_tokenizer.vocab.pad_id)
    with torch.no_grad():
        bag_logits = task.ngrams(tokens, lengths)
        torch_logits = task(tokens, lengths)
    assert bag_logits.abs().max() > 0.1
    assert (graph({"tokens": tokens, "lengths": lengths})["logits"] - torch_logits).abs().max() < TOLERANCE


def test_tagger_emissions_match_pytorch():
    ckpt, model = exported("tagger")
    task = load_task(ckpt)
    _, graphs = onnx_graphs(model)
    sentences = [[w for w, _ in s] for s in random_sentences(9, 5)] + [["unseenword", "quickly"]]
    table = FormTable(task.words, task.chars)
    collate = CollateSentences(task.words.vocab.pad_id, task.chars.vocab.pad_id, task.words.vocab.unk_id)
    batch = collate([(i, table.encode(words)) for i, words in enumerate(sentences)])
    inputs = {name: getattr(batch, name) for name in ("words", "lengths", "chars", "char_lengths", "forms")}
    emissions = graphs["tagger"](inputs)["emissions"]  # (B, T, K)
    with torch.no_grad():
        reference = task.head(task(batch))
    mask = batch.mask
    assert (emissions - reference)[mask].abs().max() < TOLERANCE
    assert torch.equal(emissions.argmax(-1)[mask], reference.argmax(-1)[mask])  # the softmax tagger's tags


def test_language_model_step_and_greedy_text_match_pytorch():
    ckpt, model = exported("language_model")
    task = load_task(ckpt)
    _, graphs = onnx_graphs(model)
    step = OnnxStep(graphs["step"])
    tokens = torch.tensor([3, 5, 7])
    onnx_state = torch_state = None
    for _ in range(4):  # the state carried through steps, both sides
        onnx_log_probs, onnx_state = step(tokens, onnx_state)
        with torch.no_grad():
            torch_log_probs, torch_state = task.step_function(tokens, torch_state)
        finite = torch_log_probs.isfinite()  # specials are -inf on both sides
        assert torch.equal(onnx_log_probs.isfinite(), finite)
        assert (onnx_log_probs - torch_log_probs)[finite].abs().max() < TOLERANCE
        tokens = torch_log_probs.argmax(-1)
    prime = "First Citizen:"
    ids = torch.tensor(task.tokenizer.encode(prime))
    state = None
    for token in ids[:-1]:  # the prime, one step at a time (PyTorch runs it as one fused call)
        _, state = step(token[None], state)
    onnx_ids = Greedy().decode(step, state, ids[-1:], 40)[0].tolist()
    assert prime + task.tokenizer.decode(onnx_ids) == task.generate(prime, 40, Greedy())[0]


@pytest.mark.parametrize("strategy", [Greedy(), BeamSearch(beam_size=5)], ids=["greedy", "beam5"])
def test_translation_through_onnx_encoder_and_step_matches_pytorch(strategy):
    ckpt, model = exported("translator")
    task = load_task(ckpt)
    _, graphs = onnx_graphs(model)
    step = OnnxStep(graphs["step"])
    sources = [s for s, _ in reversal_pairs(12, 3)]
    source, lengths = task.pad(task.encode_sources(sources))  # (B, S), (B,)
    with torch.no_grad():
        _, torch_tokens, torch_scores, max_len = task.search(source, lengths, strategy)
        pytorch_state = task.encode(source, lengths)
    state = step.encode(graphs["encoder"], {"source": source, "lengths": lengths})
    assert (state[PER_INPUT]["memory"] - pytorch_state[PER_INPUT]["memory"]).abs().max() < TOLERANCE
    first = torch.full_like(max_len, task.bos_id)
    onnx_tokens, onnx_scores = strategy.search(step, state, first, max_len, eos_id=task.eos_id)
    assert torch.equal(onnx_tokens, torch_tokens)
    assert (onnx_scores - torch_scores).abs().max() < TOLERANCE


@pytest.mark.parametrize("strategy", [Greedy(), BeamSearch(beam_size=3)], ids=["greedy", "beam3"])
def test_captioning_through_onnx_image_grid_start_and_step_matches_pytorch(strategy, tmp_path):
    ckpt, model = exported("captioner")
    task = load_task(ckpt)
    manifest, graphs = onnx_graphs(model)
    assert manifest["kind"] == "captioning"
    write_toy(tmp_path, 5, seed=7)
    arrays = [load_input(tmp_path / f"{n}.png", task.inputs["image_size"], "<test>", n) for n in range(5)]
    images, _ = stack_inputs(arrays)  # (B, 3, H, W) uint8
    max_len = torch.full((5,), task.max_length)
    with torch.no_grad():
        grid, mask = task.image_grid(images, None)  # (B, R, D), (B, R)
        torch_tokens, torch_scores = task.search_from(task.start(grid, mask), max_len, strategy)
    out = graphs["image_grid"]({"inputs": images})
    assert (out["grid"] - grid).abs().max() < TOLERANCE and torch.equal(out["mask"], mask)
    step = OnnxStep(graphs["step"])
    state = step.encode(graphs["start"], {"grid": out["grid"], "mask": out["mask"]})
    first = torch.full_like(max_len, task.bos_id)
    onnx_tokens, onnx_scores = strategy.search(step, state, first, max_len, eos_id=task.eos_id)
    assert torch.equal(onnx_tokens, torch_tokens)
    assert (onnx_scores - torch_scores).abs().max() < TOLERANCE


def test_captioning_features_graphs_take_any_number_of_regions():
    torch.manual_seed(0)
    task = untrained({"name": "precomputed", "size": 8}, FEATURES)
    files, manifest = export_onnx(task)
    graphs = {name: OnnxGraph(files[graph["file"]]) for name, graph in manifest["graphs"].items()}
    assert manifest["graphs"]["image_grid"]["inputs"] == ["inputs", "regions"]
    features, regions = torch.randn(4, 9, FEATURES["size"]), torch.tensor([9, 1, 4, 7])  # not the traced (3, 5)
    out = graphs["image_grid"]({"inputs": features, "regions": regions})
    state = OnnxStep(graphs["step"]).encode(graphs["start"], out)
    with torch.no_grad():
        reference = task.encode(features, regions)
    assert torch.equal(state[PER_INPUT]["mask"], reference[PER_INPUT]["mask"])
    for key in ("memory", "keys"):
        assert (state[PER_INPUT][key] - reference[PER_INPUT][key]).abs().max() < TOLERANCE
    assert (state["rnn"] - reference["rnn"]).abs().max() < TOLERANCE


def test_graphs_are_digested_with_the_directory(tmp_path):
    _, model = exported("classifier")
    manifest, paths = read_onnx(model)
    assert paths == {"classifier": model / "onnx" / "classifier.onnx"}
    assert manifest["graphs"]["classifier"]["inputs"] == ["tokens", "lengths"]
    assert load_task(model) is not None  # still a PyTorch model directory too
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in model.rglob("*"):
        if path.is_file():
            (copy / path.relative_to(model)).parent.mkdir(parents=True, exist_ok=True)
            (copy / path.relative_to(model)).write_bytes(path.read_bytes())
    graph = copy / "onnx" / "classifier.onnx"
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")
    with pytest.raises(DataError, match="classifier.onnx"):
        read_onnx(copy)


def test_default_format_writes_no_graphs_and_bad_format_is_refused(tmp_path):
    ckpt, _ = exported("classifier")
    command("seqtasks.export", f"ckpt={ckpt}", f"output={tmp_path / 'plain'}")
    assert not (tmp_path / "plain" / "onnx").exists()
    with pytest.raises(DataError, match="no ONNX graphs"):
        read_onnx(tmp_path / "plain")
    result = command("seqtasks.export", f"ckpt={ckpt}", f"output={tmp_path / 'x'}", "format=tflite", check=False)
    assert result.returncode != 0 and "format=tflite" in result.stderr
