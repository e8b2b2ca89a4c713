"""`python -m seqtasks.predict ... attention=<file> attention_images=<dir>`: the attention of every
translated line as JSON lines (and heatmaps), on a tiny translation model trained for a few steps
(what it has learnt does not matter: only the shape and consistency of what is written)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from conftest import FP32, command, train

from seqtasks.errors import ConfigError
from seqtasks.runtime.build import load_task
from seqtasks.tokenizers.vocab import SPECIALS

TINY_TRANSLATION = [
    "task=translation",
    "data=parallel",
    "tokenizer=char",
    "task.embedding_dim=16",
    "task.dropout=0",
    "task.optimizer.lr=0.01",
    "encoder.hidden_size=16",
    "encoder.num_layers=1",
    "encoder.dropout=0",
    "head.embedding_dim=16",
    "head.rnn.hidden_size=16",
    "head.rnn.num_layers=1",
    "head.rnn.dropout=0",
    "head.dropout=0",
    "data.max_tokens=400",
    "data.max_length=20",
    "trainer.max_steps=20",
    "trainer.max_epochs=1",
    "trainer.max_time=null",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "early_stopping.patience=null",
    "attention_images.sentences=1",
    "logger=[]",
    FP32,
]

# Lines of several lengths (batches with padding), an empty line, and an unseen character ('x').
LINES = ["a b c", "", "f e d c b", "a", "c a x", "e e f a b c d"]


def reversal_tsv(path: Path, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    sentences = [" ".join(rng.choice("abcdef") for _ in range(rng.randint(2, 6))) for _ in range(count)]
    path.write_text("".join(f"{s}\t{s[::-1]}\n" for s in sentences))
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("attention")
    train_file, val = reversal_tsv(root / "train.tsv", 300, 0), reversal_tsv(root / "val.tsv", 10, 1)
    train(*TINY_TRANSLATION, f"data.train={train_file}", f"data.val={val}", f"data.test={val}", run_dir=root / "run")
    return root / "run" / "checkpoints" / "best.ckpt"


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "input.txt"
    path.write_text("\n".join(LINES) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_record(record: dict, line: str, translation: str) -> None:
    """Pieces as the tokenizers cut them, one row per target piece, rows summing to 1 over the source."""
    if not line:
        assert record["source"] == record["target"] == record["attention"] == []
        return
    assert record["source"] == [c if c in "abcdef " else "<unk>" for c in line]  # char tokenizer
    target = record["target"]
    assert "".join(p for p in target if p not in SPECIALS) == translation  # the printed translation
    assert "<eos>" not in target[:-1]  # <eos> only as the stopping step's row
    # A hypothesis that never stopped ran to its length limit (task.max_length_ratio=1.5, + 10).
    assert target[-1] == "<eos>" or len(target) == math.ceil(1.5 * len(line)) + 10
    weights = torch.tensor(record["attention"], dtype=torch.float64)
    assert weights.shape == (len(target), len(record["source"]))
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(len(target), dtype=torch.float64), atol=1e-5, rtol=0)


def test_attention_json_and_images_match_the_translations(ckpt, source, tmp_path):
    out, attention, images = tmp_path / "out.hyp", tmp_path / "out.attention.jsonl", tmp_path / "images"
    result = command(
        "seqtasks.predict",
        f"ckpt={ckpt}",
        f"input={source}",
        f"output={out}",
        f"attention={attention}",
        f"attention_images={images}",
        "decoding=greedy",
        "batch_size=2",  # several batches, each padded
    )
    translations = out.read_text().split("\n")[:-1]
    records = read_jsonl(attention)
    assert len(translations) == len(records) == len(LINES)
    assert [r["line"] for r in records] == list(range(1, len(LINES) + 1))
    for record, line, translation in zip(records, LINES, translations, strict=True):
        check_record(record, line, translation)
    # One heatmap per non-empty line, named by its 1-based line number; no partial files left over.
    assert sorted(p.name for p in images.iterdir()) == [f"sentence_{n}.png" for n in (1, 3, 4, 5, 6)]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in images.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "input.txt", "out.attention.jsonl", "out.hyp"]
    assert f"wrote the attention of {len(LINES)} line(s) to {attention}" in result.stderr
    # Batched with padding, the weights are those of each sentence translated alone.
    task = load_task(ckpt)
    for record, line in zip(records, LINES, strict=True):
        if line:
            pieces, output, weights = task.attention_map(line)
            assert (pieces, output) == (record["source"], record["target"])
            torch.testing.assert_close(torch.tensor(record["attention"]), weights, atol=1e-5, rtol=0)


def test_n_best_lists_are_written_with_the_attention_of_the_best(ckpt, source, tmp_path):
    attention = tmp_path / "a.jsonl"
    result = command(
        "seqtasks.predict",
        f"ckpt={ckpt}",
        f"input={source}",
        f"attention={attention}",
        "decoding=beam",
        "decoding.beam_size=3",
        "decoding.n_best=2",
    )
    rows = [line.split(" ||| ") for line in result.stdout.splitlines()]
    # Two hypotheses per line, best first (an empty line has its one empty translation).
    assert [int(r[0]) for r in rows] == [i for i, line in enumerate(LINES) for _ in range(2 if line else 1)]
    best = {}
    for index, text, _ in rows:
        best.setdefault(int(index), text)
    records = read_jsonl(attention)
    assert len(records) == len(LINES)
    for i, (record, line) in enumerate(zip(records, LINES, strict=True)):
        check_record(record, line, best[i])


def test_an_attention_file_that_is_the_output_is_refused(source, tmp_path):
    out = tmp_path / "out.txt"
    result = command(
        "seqtasks.predict", "ckpt=x.ckpt", f"input={source}", f"output={out}", f"attention={out}", check=False
    )
    assert result.returncode == 2
    assert result.stderr == f"error: attention={out} is the output file (output={out}); give attention another path\n"


def test_a_translation_model_without_attention_says_so(ckpt):
    task = load_task(ckpt)
    task.decoder.attention = None  # what head=plain_decoder builds
    with pytest.raises(ConfigError, match=r"task 'translation': this model has no attention \(head.attention=null\)"):
        task.translate_with_attention(["a b"])


def test_a_classifier_given_attention_fails_with_one_line(tiny_classifier, tmp_path):
    source = tmp_path / "names.txt"
    source.write_text("Ivanov3\n")
    attention = tmp_path / "a.jsonl"
    result = command(
        "seqtasks.predict",
        f"ckpt={tiny_classifier / 'run' / 'checkpoints' / 'best.ckpt'}",
        f"input={source}",
        f"attention={attention}",
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: task 'classification' has no attention to write; drop attention=... and attention_images=...\n"
    )
    assert not attention.exists() and result.stdout == ""
