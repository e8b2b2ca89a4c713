"""Classification end to end on a tiny names folder: a real `experiment=names_classify` run, its
metrics and confusion matrix, unseen labels, and the scores computed from a confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import command, seqtasks, smoothed_nll, train, validate_in_one_process

from seqtasks.data.batching import pad_sequences
from seqtasks.data.classification import ClassificationBatch, NamesData
from seqtasks.errors import DataError
from seqtasks.metrics import classification_scores
from seqtasks.runtime.build import load_task
from seqtasks.tokenizers import CharTokenizer, LabelVocabulary

# Two languages a character model separates at once: -ov/-ova vs -ez/-es endings.
NAMES = {
    "Russian": [
        f"{stem}{end}"
        for stem in ("Ivan", "Petr", "Smirn", "Volk", "Sokol", "Kuzn", "Pop", "Lebed", "Koz", "Novik", "Morozh", "Orl")
        for end in ("ov", "ova", "in")
    ],
    "Spanish": [
        f"{stem}{end}"
        for stem in (
            "Gonzal",
            "Rodrigu",
            "Fernand",
            "Lop",
            "Martin",
            "Sanch",
            "Per",
            "Gom",
            "Diaz",
            "Alvar",
            "Jimen",
            "Ruiz",
        )
        for end in ("ez", "es", "o")
    ],
}


@pytest.fixture(scope="module")
def names_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    folder = root / "names" / "by_language"
    folder.mkdir(parents=True)
    for language, names in NAMES.items():
        (folder / f"{language}.txt").write_text("\n".join(names + names[:5]) + "\n")  # with repeats
    return root


@pytest.fixture(scope="module")
def names_run(names_root, tmp_path_factory) -> Path:
    """One tiny run of the real experiment (smoke run of experiment=names_classify)."""
    run_dir = tmp_path_factory.mktemp("names_run")
    train(
        "experiment=names_classify",
        f"data.root={names_root}",
        "encoder.hidden_size=32",
        "trainer.max_epochs=25",
        "trainer.max_time=null",
        "trainer.enable_progress_bar=false",
        "data.max_tokens=60",
        "early_stopping.patience=null",
        "encoder.weight_drop=0",  # DropConnect keeps a 32-wide LSTM from fitting the toy names in 25 epochs
        run_dir=run_dir,
    )
    return run_dir


def test_names_classify_run_learns_and_reports_everything(names_run):
    metrics = json.loads((names_run / "metrics.json").read_text())
    assert metrics["test/acc"] == pytest.approx(1.0) and metrics["test/macro_f1"] == pytest.approx(1.0)
    assert {"test/precision/Russian", "test/recall/Spanish", "test/f1/Spanish", "val/acc"} <= set(metrics)
    assert (names_run / "confusion_matrix.png").stat().st_size > 1000
    assert "](confusion_matrix.png)" in (names_run / "report.md").read_text()
    assert (names_run / "report" / "acc.png").is_file()  # the curve of val/acc, which selects checkpoints


def test_the_split_has_no_duplicates_and_labels_come_from_training(names_root):
    data = NamesData(root=str(names_root), max_tokens=100)
    tokenizers = data.build_tokenizers({"name": "char"})
    assert tokenizers["labels"].vocab.tokens == ["Russian", "Spanish"]
    seen = [name for split in ("train", "val", "test") for name, _ in data.read(split)]
    assert len(seen) == len(set(seen)) == sum(len(names) for names in NAMES.values())


def test_a_label_training_never_saw_names_the_split_and_example(names_root):
    data = NamesData(root=str(names_root), max_tokens=100)
    data.use_tokenizers({"text": CharTokenizer().fit(["abc"]), "labels": LabelVocabulary().fit(["Russian"])})
    with pytest.raises(DataError, match=r"by_language \(test split\): example \d+: label 'Spanish' was not seen"):
        data.encoded("test")


def test_scores_from_a_confusion_matrix():
    confusion = torch.tensor([[8, 2], [0, 10]])  # rows: true, columns: predicted
    scores = classification_scores(confusion, ["a", "b"])
    assert scores["acc"] == pytest.approx(18 / 20)
    assert scores["precision/a"] == pytest.approx(1.0) and scores["recall/a"] == pytest.approx(0.8)
    assert scores["precision/b"] == pytest.approx(10 / 12) and scores["recall/b"] == pytest.approx(1.0)
    f1_a, f1_b = 2 * 0.8 / 1.8, 2 * (10 / 12) / (10 / 12 + 1)
    assert scores["macro_f1"] == pytest.approx((f1_a + f1_b) / 2)


def test_predict_writes_a_label_and_probability_per_line(names_run, tmp_path):
    source = tmp_path / "input.txt"
    source.write_text("Zaitsevova\n\nHernandez\n")
    result = command("seqtasks.predict", f"ckpt={names_run / 'checkpoints' / 'best.ckpt'}", f"input={source}")
    rows = result.stdout.split("\n")
    assert rows[1] == "" and rows[3] == "" and len(rows) == 4
    assert rows[0].split("\t")[0] == "Russian" and rows[2].split("\t")[0] == "Spanish"
    assert 0.5 < float(rows[0].split("\t")[1]) <= 1.0


def test_predict_refuses_a_line_over_max_chars_naming_it(names_run, tmp_path):
    # One runaway line (a file without line breaks) took minutes and gigabytes, read whole.
    source = tmp_path / "input.txt"
    source.write_text("Ivanov\n" + "Garcia" * 5 + "\n")
    ckpt = f"ckpt={names_run / 'checkpoints' / 'best.ckpt'}"
    result = command("seqtasks.predict", ckpt, f"input={source}", "max_chars=20", check=False)
    assert result.returncode == 2
    assert (
        result.stderr
        == f"error: {source}:2: 30 characters, more than max_chars=20; raise max_chars to read longer lines\n"
    )
    assert len(command("seqtasks.predict", ckpt, f"input={source}", "max_chars=30").stdout.splitlines()) == 2


def test_evaluate_scores_a_names_file_the_model_never_saw(names_run, tmp_path):
    new_names = tmp_path / "new_names.tsv"
    new_names.write_text("name\tlanguage\nBorisova\tRussian\nDominguez\tSpanish\nVasilyevin\tRussian\n")
    output = tmp_path / "scores.json"
    result = command(
        "seqtasks.evaluate", f"ckpt={names_run / 'checkpoints' / 'best.ckpt'}", f"test={new_names}", f"output={output}"
    )
    metrics = json.loads(result.stdout)
    assert metrics == json.loads(output.read_text())
    assert metrics["test/acc"] == pytest.approx(1.0) and "test/macro_f1" in metrics
    assert (output.parent / "scores.confusion_matrix.png").exists()  # drawn next to the metrics, named after them


def test_evaluate_without_output_replaces_no_confusion_matrix_in_the_working_directory(
    names_run, tmp_path, monkeypatch
):
    # Run from a run directory, it would have replaced that run's own test figure.
    mine = tmp_path / "confusion_matrix.png"
    mine.write_bytes(b"the run's own figure")
    monkeypatch.chdir(tmp_path)
    command("seqtasks.evaluate", f"ckpt={names_run / 'checkpoints' / 'best.ckpt'}")
    assert mine.read_bytes() == b"the run's own figure" and sorted(p.name for p in tmp_path.iterdir()) == [mine.name]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_scores_every_example_once(names_root, tmp_path):
    # 16 tokens a batch: the 8 val names come in 5 batches, so DDP repeats one of them on the second
    # rank; gathered by example index, each name must count once.
    seqtasks(
        "experiment=names_classify",
        f"data.root={names_root}",
        "encoder.hidden_size=16",
        "trainer.max_epochs=2",
        "trainer.max_time=null",
        "trainer.enable_progress_bar=false",
        "data.max_tokens=16",
        "trainer.precision=32-true",
        "early_stopping.patience=null",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "logger=[]",
        f"hydra.run.dir={tmp_path}",
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    single = validate_in_one_process(tmp_path / "checkpoints" / "best.ckpt")
    for key in ("val/acc", "val/macro_f1", "val/loss"):
        assert metrics[key] == pytest.approx(single[key], abs=1e-6), key


def test_label_smoothing_mixes_the_nll_with_the_mean_over_every_label(tiny_classifier):
    task = load_task(tiny_classifier / "run" / "checkpoints" / "best.ckpt")  # eval mode: no dropout
    texts = ["Ivanov3", "Garcia7", "Ivan"]
    tokens, lengths = pad_sequences(
        [task.text_tokenizer.encode(text) for text in texts], task.text_tokenizer.vocab.pad_id
    )
    labels = torch.tensor([0, 1, 1])
    batch = ClassificationBatch(tokens=tokens, lengths=lengths, labels=labels, indices=[0, 1, 2])
    log_probs = task(tokens, lengths).float().log_softmax(-1)  # (B, C)
    for smoothing in (0.2, 0.0):
        task.label_smoothing = smoothing
        expected = smoothed_nll(log_probs, labels, smoothing).item()
        assert task.training_loss(batch).item() == pytest.approx(expected, rel=1e-5)
