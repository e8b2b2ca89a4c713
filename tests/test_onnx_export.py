"""`seqtasks.export format=onnx`: each exported graph, run by onnxruntime, against the PyTorch model
it came from (the independent reference): logits within 1e-4 on the same inputs, and the same greedy
and beam-search output when seqtasks.decoding drives the ONNX step (OnnxStep) instead of the model's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FP32, TINY_LM, TINY_TEXT, command, train
from tasks.test_classification_task import NAMES
from tasks.test_tagging_task import TINY as TINY_TAGGING
from tasks.test_tagging_task import conllu, random_sentences
from tasks.test_translation_task import TINY_TRANSLATION, reversal_pairs, write_tsv

from seqtasks.data.tagging import CollateSentences, FormTable
from seqtasks.decoding import BeamSearch, Greedy
from seqtasks.errors import DataError
from seqtasks.onnx.graphs import padded_example
from seqtasks.onnx.runtime import OnnxStep, onnx_graphs
from seqtasks.runtime.build import load_task
from seqtasks.runtime.model_dir import read_onnx

pytest.importorskip("onnxruntime")
TOLERANCE = 1e-4
SHORT = ["trainer.max_time=null", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false"]


def exported(tmp_path_factory, name: str, *overrides: str) -> tuple[Path, Path]:
    """Train a few steps, export with format=onnx -> (checkpoint, model directory)."""
    run_dir = tmp_path_factory.mktemp(name)
    train(*overrides, *SHORT, "early_stopping.patience=null", run_dir=run_dir)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    command("seqtasks.export", f"ckpt={ckpt}", f"output={run_dir / 'model'}", "format=onnx")
    return ckpt, run_dir / "model"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("names")
    (root / "names" / "by_language").mkdir(parents=True)
    for language, names in NAMES.items():
        (root / "names" / "by_language" / f"{language}.txt").write_text("\n".join(names) + "\n")
    return exported(
        tmp_path_factory, "classifier", "experiment=names_classify", f"data.root={root}", "encoder.hidden_size=16",
        "trainer.max_steps=3", "trainer.max_epochs=1",
    )  # fmt: skip


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    root = tmp_path_factory.mktemp("treebank")
    for split, seed in (("train", 0), ("val", 1), ("test", 2)):
        (root / f"{split}.conllu").write_text(conllu(random_sentences(20, seed)), encoding="utf-8")
    files = [f"data.{split}={root / f'{split}.conllu'}" for split in ("train", "val", "test")]
    tiny = [arg for arg in TINY_TAGGING if not arg.startswith("trainer.max_epochs")]
    return exported(
        tmp_path_factory, "tagger", "experiment=ud_ewt_pos", *tiny, *files, "trainer.max_steps=3",
        "trainer.max_epochs=1", "encoder.bidirectional=true", "encoder.num_layers=2",
    )  # fmt: skip


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    text = tmp_path_factory.mktemp("text") / "tiny.txt"
    text.write_text(TINY_TEXT, encoding="utf-8")
    return exported(tmp_path_factory, "lm", "data=text_file", f"data.path={text}", *TINY_LM, "encoder.num_layers=2")


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    root = tmp_path_factory.mktemp("reverse")
    train_file = write_tsv(root / "train.tsv", reversal_pairs(400, 0))
    val = write_tsv(root / "val.tsv", reversal_pairs(20, 1))
    tiny = [arg for arg in TINY_TRANSLATION if not arg.startswith(("trainer.max_epochs", "attention_images"))]
    return exported(
        tmp_path_factory, "translator", *tiny, f"data.train={train_file}", f"data.val={val}", f"data.test={val}",
        "trainer.max_steps=40", "trainer.max_epochs=5", "attention_images.sentences=0", FP32,
    )  # fmt: skip


def test_classifier_logits_match_pytorch_on_variable_lengths(classifier):
    ckpt, model = classifier
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


def test_tagger_emissions_match_pytorch(tagger):
    ckpt, model = tagger
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


def test_language_model_step_and_greedy_text_match_pytorch(language_model):
    ckpt, model = language_model
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
def test_translation_through_onnx_encoder_and_step_matches_pytorch(translator, strategy):
    ckpt, model = translator
    task = load_task(ckpt)
    _, graphs = onnx_graphs(model)
    step = OnnxStep(graphs["step"])
    sources = [s for s, _ in reversal_pairs(12, 3)]
    source, lengths = task.pad(task.encode_sources(sources))  # (B, S), (B,)
    with torch.no_grad():
        _, torch_tokens, torch_scores, max_len = task.search(source, lengths, strategy)
        pytorch_state = task.encode(source, lengths)
    state = step.encode(graphs["encoder"], {"source": source, "lengths": lengths})
    assert (state["memory"] - pytorch_state["memory"]).abs().max() < TOLERANCE
    first = torch.full_like(max_len, task.bos_id)
    onnx_tokens, onnx_scores = strategy.search(step, state, first, max_len, eos_id=task.eos_id)
    assert torch.equal(onnx_tokens, torch_tokens)
    assert (onnx_scores - torch_scores).abs().max() < TOLERANCE


def test_graphs_are_digested_with_the_directory(classifier, tmp_path):
    _, model = classifier
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


def test_default_format_writes_no_graphs_and_bad_format_is_refused(classifier, tmp_path):
    ckpt, _ = classifier
    command("seqtasks.export", f"ckpt={ckpt}", f"output={tmp_path / 'plain'}")
    assert not (tmp_path / "plain" / "onnx").exists()
    with pytest.raises(DataError, match="no ONNX graphs"):
        read_onnx(tmp_path / "plain")
    result = command("seqtasks.export", f"ckpt={ckpt}", f"output={tmp_path / 'x'}", "format=tflite", check=False)
    assert result.returncode != 0 and "format=tflite" in result.stderr
