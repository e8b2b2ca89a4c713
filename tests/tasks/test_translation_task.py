"""Translation end to end on a task small enough to learn exactly: reversing sentences of letters
("a b c" -> "c b a"; several words each, so BLEU's 4-grams exist).
One real `python -m seqtasks task=translation` run serves every test here, including the predict
and evaluate commands on its checkpoint."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest
import torch
from conftest import FP32, command, seqtasks, train

from seqtasks.decoding import BeamSearch, Greedy
from seqtasks.metrics import corpus_scores
from seqtasks.runtime.arithmetic import use_arithmetic
from seqtasks.runtime.build import load_task

pytestmark = pytest.mark.slow  # one real translation run serves every test here

TINY_TRANSLATION = [
    "task=translation",
    "data=parallel",
    "tokenizer=char",
    "task.embedding_dim=32",
    "task.dropout=0",
    "task.label_smoothing=0",
    "task.optimizer.lr=0.01",
    "task.scheduler.warmup_steps=10",
    "encoder.hidden_size=64",
    "encoder.num_layers=1",
    "encoder.dropout=0",
    "head.embedding_dim=32",
    "head.rnn.hidden_size=64",
    "head.rnn.num_layers=1",
    "head.rnn.dropout=0",
    "head.dropout=0",
    "data.max_tokens=1200",
    "data.max_length=20",
    "trainer.max_epochs=12",
    "trainer.max_time=null",
    FP32,
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "early_stopping.patience=null",
    "attention_images.sentences=2",
    "decoding.beam_size=3",
]


def reversal_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    sentences = [" ".join(rng.choice("abcdef") for _ in range(rng.randint(2, 8))) for _ in range(count)]
    return [(s, s[::-1]) for s in sentences]


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    return path


@pytest.fixture(scope="module")
def reversal_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reverse")
    train_file = write_tsv(root / "train.tsv", reversal_pairs(3000, 0))
    val = write_tsv(root / "val.tsv", reversal_pairs(100, 1))
    train(*TINY_TRANSLATION, f"data.train={train_file}", f"data.val={val}", f"data.test={val}", run_dir=root / "run")
    return root


def exact_share(hypotheses: list[str], references: list[str]) -> float:
    return sum(h == r for h, r in zip(hypotheses, references, strict=True)) / len(references)


# The reversal is learnt to (nearly) every sentence; how many of the last few come out exact hinges
# on the CPU's floating-point kernels (AMX or not), so the bars leave room for one or two.
def test_the_run_learns_to_reverse_and_reports_sacrebleu(reversal_run):
    metrics = json.loads((reversal_run / "run" / "metrics.json").read_text())
    assert metrics["val/bleu"] > 97 and metrics["test/bleu"] > 97
    assert metrics["test/bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert {"test/chrf", "test/loss", "val/chrf", "val/loss"} <= set(metrics)
    run = reversal_run / "run"
    assert sorted(p.name for p in (run / "attention").iterdir()) == ["sentence_0.png", "sentence_1.png"]
    assert sorted(p.name for p in (run / "tokenizers").iterdir()) == ["source.json", "target.json"]
    assert "](attention/sentence_0.png)" in (run / "report.md").read_text()
    assert (run / "report" / "bleu.png").is_file()


def test_checkpoint_translates_on_its_own_with_greedy_and_beam(reversal_run):
    task = load_task(reversal_run / "run" / "checkpoints" / "best.ckpt")
    pairs = reversal_pairs(50, 7)
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    assert exact_share(task.translate(sources, Greedy()), references) >= 0.96
    assert exact_share(task.translate(sources, BeamSearch(beam_size=4)), references) >= 0.96
    assert task.translate(["", "a b", ""], Greedy()) == ["", "b a", ""]


def test_beam_size_one_is_greedy_on_the_decoder(reversal_run):
    task = load_task(reversal_run / "run" / "checkpoints" / "best.ckpt")
    torch.manual_seed(0)
    task.decoder.output.bias.data += torch.randn_like(task.decoder.output.bias) * 3  # make it make mistakes
    sources = [s for s, _ in reversal_pairs(40, 3)]
    assert task.translate(sources, BeamSearch(beam_size=1)) == task.translate(sources, Greedy())


def test_a_full_shortlist_searches_exactly_as_without_one(reversal_run):
    task = load_task(reversal_run / "run" / "checkpoints" / "best.ckpt")
    torch.manual_seed(0)
    task.decoder.output.bias.data += torch.randn_like(task.decoder.output.bias) * 3  # make it make mistakes
    source, lengths = task.pad([task.source_tokenizer.encode(s) for s, _ in reversal_pairs(20, 5)])
    _, tokens, scores, _ = task.search(source, lengths, BeamSearch(beam_size=3, n_best=2))
    task.use_shortlist(reversal_pairs(300, 0), per_source=len(task.target_tokenizer))  # every token
    assert len(task.shortlist.vocabulary(source, lengths)) == len(task.target_tokenizer)
    _, shortlisted, shortlisted_scores, _ = task.search(source, lengths, BeamSearch(beam_size=3, n_best=2))
    assert torch.equal(shortlisted, tokens)
    torch.testing.assert_close(shortlisted_scores, scores)


def test_a_shortlist_limits_the_output_to_its_lexicon(reversal_run):
    task = load_task(reversal_run / "run" / "checkpoints" / "best.ckpt")
    pairs = reversal_pairs(50, 7)
    task.use_shortlist(pairs, per_source=1, frequent=0)  # reversal: each letter's best partner is itself
    outputs = task.translate([s for s, _ in pairs], BeamSearch(beam_size=3))
    assert exact_share(outputs, [t for _, t in pairs]) >= 0.96
    without_f = [(s, t) for s, t in reversal_pairs(300, 0) if "f" not in s]
    task.use_shortlist(without_f, per_source=1, frequent=0)  # nothing proposes 'f' any more
    assert not any("f" in output for output in task.translate(["a f b", "f f"], Greedy()))


def test_predict_learns_its_shortlist_from_the_runs_training_pairs(reversal_run, caplog):
    caplog.set_level(logging.INFO, logger="seqtasks.runtime.shortlist")
    ckpt = reversal_run / "run" / "checkpoints" / "best.ckpt"
    result = command("seqtasks.predict", f"ckpt={ckpt}", "input=-", "shortlist=2", stdin="a b c\nf e d\n")
    assert result.stdout == "c b a\nd e f\n"
    assert "learned a shortlist of 2 per source token" in caplog.text
    refused = command("seqtasks.predict", f"ckpt={ckpt}", "input=-", "shortlist=2", "backend=onnxruntime", check=False)
    assert refused.returncode == 2 and "cuts the PyTorch output layer" in refused.stderr


@pytest.mark.parametrize("quantize", [None, "int8", "bf16"])
def test_a_shortlist_of_every_target_decodes_as_the_whole_output_layer(reversal_run, quantize):
    """The cut output layer (in each arithmetic) scores the rows it keeps as the whole layer does."""
    task = use_arithmetic(load_task(reversal_run / "run" / "checkpoints" / "best.ckpt"), quantize)
    sources = [s for s, _ in reversal_pairs(20, 3)]
    whole = task.translate(sources, BeamSearch(beam_size=3))
    task.use_shortlist(reversal_pairs(300, 0), per_source=1, frequent=len(task.target_tokenizer))  # every id
    assert task.translate(sources, BeamSearch(beam_size=3)) == whole


@pytest.mark.parametrize("quantize", ["int8", "bf16"])
def test_cheaper_arithmetic_still_reverses(reversal_run, quantize):
    fp32 = load_task(reversal_run / "run" / "checkpoints" / "best.ckpt")
    task = use_arithmetic(load_task(reversal_run / "run" / "checkpoints" / "best.ckpt"), quantize)
    pairs = reversal_pairs(50, 7)
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    # A bar below fp32's: the tiny model's last few sentences hinge on rounding (see the first test).
    assert exact_share(task.translate(sources, BeamSearch(beam_size=3)), references) >= 0.8
    # The arithmetic really changed: scores move, a little.
    source, lengths = fp32.pad([fp32.source_tokenizer.encode(s) for s in sources])
    with fp32.inference():
        reference_scores = fp32.search(source, lengths, Greedy())[2]
    with task.inference():  # bf16: autocast in this block only
        scores = task.search(source, lengths, Greedy())[2]
    assert not torch.equal(scores, reference_scores)
    torch.testing.assert_close(scores, reference_scores, atol=0.5, rtol=0.1)


def test_attention_map_looks_at_the_mirrored_position(reversal_run):
    task = load_task(reversal_run / "run" / "checkpoints" / "best.ckpt")
    source, output, weights = task.attention_map("a b c d e f")
    assert output == list("f e d c b a") + ["<eos>"] and source == list("a b c d e f")
    torch.testing.assert_close(weights.sum(-1), torch.ones(12))
    # Reversal reads the source right to left: each output letter looks at (or next to) its mirror.
    looked_at = weights[0:11:2].argmax(-1)
    mirror = torch.tensor([10, 8, 6, 4, 2, 0])
    assert (looked_at.diff() < 0).all() and ((looked_at - mirror).abs() <= 1).all(), looked_at


def test_predict_keeps_every_line_aligned(reversal_run, tmp_path, caplog):
    ckpt = reversal_run / "run" / "checkpoints" / "best.ckpt"
    lines = ["a b c", "", "f e d", "a " * 150, "", "x y z\u2028a b", "c a b"]  # empty, too long, unseen characters
    source = tmp_path / "input.txt"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.txt"
    result = command(
        "seqtasks.predict", f"ckpt={ckpt}", f"input={source}", f"output={out}", "decoding=beam", "decoding.beam_size=5"
    )
    written = out.read_text().split("\n")
    assert written[-1] == "" and len(written[:-1]) == len(lines)
    assert [written[i] for i in (0, 1, 2, 4, 6)] == ["c b a", "", "d e f", "", "b a c"]
    assert "truncated 1 of 7 source sentences to task.max_length=20 tokens" in caplog.text
    assert f"wrote 7 result(s) to {out}" in result.stderr
    piped = command("seqtasks.predict", f"ckpt={ckpt}", "input=-", stdin="a b c\n\nf e d\n")
    assert piped.stdout == "c b a\n\nd e f\n"


def test_evaluate_scores_a_new_test_set(reversal_run, tmp_path):
    ckpt = reversal_run / "run" / "checkpoints" / "best.ckpt"
    pairs = reversal_pairs(30, 11)
    source, reference = tmp_path / "new.src", tmp_path / "new.ref"
    source.write_text("".join(s + "\n" for s, _ in pairs))
    reference.write_text("".join(t + "\n" for _, t in pairs[:-1]) + "wrong\n")
    result = command("seqtasks.evaluate", f"ckpt={ckpt}", f"test=[{source},{reference}]", "decoding=greedy")
    metrics = json.loads(result.stdout)
    assert 80 < metrics["test/bleu"] < 100  # one sentence in 30 is wrong
    assert metrics["test/bleu_signature"].startswith("nrefs:1")


def test_sacrebleu_of_a_perfect_hypothesis_is_100():
    perfect = ["Two dogs run.", "A man rides a bike."]
    metrics, signatures = corpus_scores(perfect, perfect)
    assert metrics["bleu"] == pytest.approx(100.0) and metrics["chrf"] == pytest.approx(100.0)
    assert corpus_scores([*perfect, "a cat"], [*perfect, "A dog sleeps on the grass."])[0]["bleu"] < 100
    assert "tok:13a" in signatures["bleu"]


def test_predict_writes_n_best_lists(reversal_run, tmp_path):
    source = tmp_path / "input.txt"
    source.write_text("a b c\nf e e d\n")
    result = command(
        "seqtasks.predict",
        f"ckpt={reversal_run / 'run' / 'checkpoints' / 'best.ckpt'}",
        f"input={source}",
        "decoding=beam",
        "decoding.beam_size=3",
        "decoding.n_best=2",
    )
    rows = [line.split(" ||| ") for line in result.stdout.splitlines()]
    assert [(r[0], len(r)) for r in rows] == [("0", 3), ("0", 3), ("1", 3), ("1", 3)]
    assert rows[0][1] == "c b a" and rows[2][1] == "d e e f"
    assert float(rows[0][2]) >= float(rows[1][2]) and float(rows[2][2]) >= float(rows[3][2])


def test_ddp_on_two_cpu_processes_gathers_every_sentence(tmp_path):
    train_file = write_tsv(tmp_path / "train.tsv", reversal_pairs(400, 0))
    val = write_tsv(tmp_path / "val.tsv", reversal_pairs(37, 1))
    overrides = [arg for arg in TINY_TRANSLATION if not arg.startswith("trainer.max_epochs")]
    seqtasks(
        *overrides,
        "trainer.max_epochs=4",
        f"data.train={train_file}",
        f"data.val={val}",
        "data.max_tokens=200",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    single = load_task(tmp_path / "run" / "checkpoints" / "best.ckpt")
    pairs = reversal_pairs(37, 1)
    bleu = corpus_scores(single.translate([s for s, _ in pairs], Greedy()), [t for _, t in pairs])[0]["bleu"]
    # The ranks' halves, gathered, score exactly like one process decoding all 37 sentences.
    assert 0 < metrics["val/bleu"] < 100  # a score that can tell the halves apart
    assert metrics["val/bleu"] == pytest.approx(bleu, abs=1e-3)
