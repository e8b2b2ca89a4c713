"""Ensembles at decode time (seqtasks/runtime/ensemble.py), `ckpt=[a,b,...]` of predict and evaluate,
on tiny models trained for a few steps (what they learnt does not matter): one checkpoint is the
model itself, a checkpoint twice decodes as it does alone, and two models give the log of the mean
of their probabilities, computed here from each member loaded on its own."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import command, train
from onnx_models import SHORT, classifier, tagger
from test_predict_attention import LINES, TINY_TRANSLATION, reversal_tsv

from seqtasks.data.batching import pad_sequences
from seqtasks.decoding.ensemble import log_mean_prob
from seqtasks.errors import ConfigError
from seqtasks.runtime.build import PYTORCH_FP32_CPU, load_task
from seqtasks.runtime.ensemble import checkpoint_paths, ensemble, load_ensemble

NAMES = ["Ivanov", "Garcia", "", "Sokolova", "Lopez"]


def trained(run_dir: Path, *overrides: str) -> str:
    train(*overrides, *SHORT, "early_stopping.patience=null", run_dir=run_dir)
    return str(run_dir / "checkpoints" / "best.ckpt")


@pytest.fixture(scope="module")
def translators(tmp_path_factory) -> tuple[str, str, str]:
    """Two translators of one data and tokenizer (seeds 1 and 2), and one whose data has a character more."""
    root = tmp_path_factory.mktemp("ensemble_translation")
    train_file, val = reversal_tsv(root / "train.tsv", 300, 0), reversal_tsv(root / "val.tsv", 10, 1)
    other = root / "other.tsv"
    other.write_text(train_file.read_text() + "a g\tg a\n")
    data = [f"data.val={val}", f"data.test={val}", *TINY_TRANSLATION]
    longer = ["trainer.max_steps=60", "trainer.max_epochs=10"]  # beyond 20 steps the outputs vary
    return (
        trained(root / "first", f"data.train={train_file}", *data, *longer, "seed=1"),
        trained(root / "second", f"data.train={train_file}", *data, *longer, "seed=2"),
        trained(root / "other", f"data.train={other}", *data),
    )


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("ensemble_classification")
    overrides = classifier(root / "data")
    return trained(root / "first", *overrides, "seed=1"), trained(root / "second", *overrides, "seed=2")


@pytest.fixture
def lines(tmp_path) -> Path:
    path = tmp_path / "input.txt"
    path.write_text("\n".join(LINES) + "\n")
    return path


def test_the_mean_of_probabilities_is_exact_where_members_agree_and_keeps_what_all_rule_out():
    a, b = torch.randn(3, 7).log_softmax(-1), torch.randn(3, 7).log_softmax(-1)  # (B, V)
    a[0, 0] = b[0, 0] = -torch.inf
    torch.testing.assert_close(log_mean_prob([a, b]), ((a.exp() + b.exp()) / 2).log())
    assert log_mean_prob([a, b])[0, 0] == -torch.inf
    assert torch.equal(log_mean_prob([a]), a) and torch.equal(log_mean_prob([a, a, a]), a)


def predicted(ckpt: str, *args: str) -> list[str]:
    return command("seqtasks.predict", f"ckpt={ckpt}", *args).stdout.splitlines()


@pytest.mark.parametrize("decoding", ["decoding=greedy", "decoding=beam"])
def test_one_checkpoint_and_the_same_one_twice_translate_as_the_model_alone(translators, lines, decoding):
    first = translators[0]
    alone = predicted(first, f"input={lines}", decoding)
    assert len(alone) == len(LINES) and len(set(alone)) > 2  # translations, not one line for all
    assert predicted(f"[{first}]", f"input={lines}", decoding) == alone
    assert predicted(f"[{first},{first}]", f"input={lines}", decoding) == alone


def test_two_translators_step_through_the_log_of_their_mean_probabilities(translators):
    first, second, _ = translators
    members = [load_task(first), load_task(second)]
    together = load_ensemble([first, second], PYTORCH_FP32_CPU)
    source, lengths = together.pad(together.encode_sources(["a b c", "f e d c b", "a"]))  # (B, S)
    bos, target = together.bos_id, together.target_tokenizer
    target_in = pad_sequences([[bos, *target.encode(t)] for t in ("c b", "b c d e", "a")], together.pad_id)[0]  # (B, T)
    with torch.no_grad():
        probabilities = [member(source, lengths, target_in)[0].softmax(-1) for member in members]  # 2 of (B, T, V)
        assert not torch.allclose(*probabilities, atol=1e-3)  # two models, not one twice
        expected = ((probabilities[0] + probabilities[1]) / 2).log()  # (B, T, V)
        state = together.encode(source, lengths)
        for t in range(target_in.shape[1]):
            log_probs, state = together.decoding_step(target_in[:, t], state)  # (B, V)
            torch.testing.assert_close(log_probs, expected[:, t], atol=1e-5, rtol=1e-5)
        # The teacher-forced pass, whose cross-entropy is evaluate's loss, reads the same average.
        torch.testing.assert_close(together(source, lengths, target_in)[0], expected, atol=1e-5, rtol=1e-5)


def test_backend_onnxruntime_runs_every_member_on_its_own_graphs(translators, lines, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from seqtasks.onnx.runtime import OnnxGraph  # needs the onnx extra

    first, second, _ = translators
    directories = [tmp_path / "first", tmp_path / "second"]
    for ckpt, directory in zip((first, second), directories, strict=True):
        command("seqtasks.export", f"ckpt={ckpt}", f"output={directory}", "format=onnx")
    ran, run = set(), OnnxGraph.__call__
    monkeypatch.setattr(OnnxGraph, "__call__", lambda graph, tensors: ran.add(id(graph)) or run(graph, tensors))
    on_onnx = predicted(
        f"[{directories[0]},{directories[1]}]", f"input={lines}", "decoding=beam", "backend=onnxruntime"
    )
    assert len(ran) == 4  # each member's encoder and step graph
    assert on_onnx == predicted(f"[{first},{second}]", f"input={lines}", "decoding=beam")


def metrics(ckpt: str) -> dict[str, float]:
    return json.loads(command("seqtasks.evaluate", f"ckpt={ckpt}").stdout)


def test_evaluate_scores_an_ensemble_on_its_first_members_test_data(translators):
    first, second, _ = translators
    alone, twice, pair = metrics(first), metrics(f"[{first},{first}]"), metrics(f"[{first},{second}]")
    assert twice["test/bleu"] == alone["test/bleu"]
    assert twice["test/loss"] == pytest.approx(alone["test/loss"], rel=1e-5)
    # -log of a mean probability is at most the mean of the -logs (Jensen): the pair's loss is at
    # most its members' average.
    assert pair["test/loss"] <= (alone["test/loss"] + metrics(second)["test/loss"]) / 2 + 1e-6


def test_a_classifier_ensemble_averages_its_members_probabilities(classifiers):
    first, second = classifiers
    members = [load_task(first), load_task(second)]
    vocab = members[0].text_tokenizer
    tokens, lengths = pad_sequences([vocab.encode(name) for name in NAMES if name], vocab.vocab.pad_id)
    with torch.no_grad():
        mean = sum(member(tokens, lengths).softmax(-1) for member in members) / 2  # (B, C)
    results = load_ensemble([first, second], PYTORCH_FP32_CPU).classify(NAMES)
    assert results[2] is None  # the empty name
    found = [result for result in results if result is not None]
    assert [label for label, _ in found] == [members[0].labels[i] for i in mean.argmax(-1).tolist()]
    torch.testing.assert_close(torch.tensor([p for _, p in found]), mean.max(-1).values, atol=1e-6, rtol=1e-6)
    alone = load_task(first).classify(NAMES)
    twice = load_ensemble([first, first], PYTORCH_FP32_CPU).classify(NAMES)
    assert [r and r[0] for r in twice] == [r and r[0] for r in alone]
    assert [r and pytest.approx(r[1], rel=1e-6) for r in twice] == [r and r[1] for r in alone]


def test_a_softmax_tagger_twice_tags_as_it_does_alone_and_crf_taggers_are_refused(tmp_path):
    softmax = trained(tmp_path / "softmax", *tagger(tmp_path))
    crf = trained(tmp_path / "crf", *tagger(tmp_path), "head=crf_tagger")
    sentences = [["the", "cat", "eating"], [], ["a", "fish", "slowly", "singing"]]
    assert load_ensemble([softmax, softmax], PYTORCH_FP32_CPU).tag(sentences) == load_task(softmax).tag(sentences)
    with pytest.raises(ConfigError, match=f"ensemble: {crf} is a CRF tagger"):
        load_ensemble([softmax, crf], PYTORCH_FP32_CPU)


def test_members_must_share_their_tokenizers_and_task(translators, classifiers, lines):
    first, _, other = translators
    result = command("seqtasks.predict", f"ckpt=[{first},{other}]", f"input={lines}", check=False)
    assert result.returncode == 2
    assert result.stderr == f"error: ensemble: {other} has another source tokenizer than {first}: " + (
        "members must share their tokenizers (trained with the same tokenizer on the same data, or init_from "
        "one checkpoint)\n"
    )
    with pytest.raises(
        ConfigError, match=f"{classifiers[0]} holds a 'classification' model and {first} a 'translation'"
    ):
        load_ensemble([first, classifiers[0]], PYTORCH_FP32_CPU)


def test_what_an_ensemble_cannot_do_is_refused_in_one_line(translators, lines, tmp_path):
    first = translators[0]
    result = command(
        "seqtasks.predict",
        f"ckpt=[{first},{first}]",
        f"input={lines}",
        f"attention={tmp_path / 'a.jsonl'}",
        check=False,
    )
    assert result.returncode == 2 and "each member of an ensemble looks on its own" in result.stderr
    captioner = SimpleNamespace(registered_name="captioning")
    with pytest.raises(ConfigError, match="'captioning' model; ensembles run translation, classification, tagging"):
        ensemble([captioner, captioner], ["a.ckpt", "b.ckpt"])
    with pytest.raises(ConfigError, match=r"ckpt=\[\]: expected a checkpoint path, or a list of them"):
        checkpoint_paths([])
