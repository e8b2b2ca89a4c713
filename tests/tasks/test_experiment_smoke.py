"""Smoke runs of the tuned experiments not driven elsewhere (names_classify: test_classification_task,
ud_ewt_pos: test_tagging_task): the real experiment config, shrunk, on tiny data made here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import command, train

from seqtasks.runtime.build import load_task

SHRINK = ["trainer.max_time=null", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", "logger=[]"]


@pytest.fixture(scope="module")
def sst_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    folder = root / "sst2"
    folder.mkdir()
    positive = ["a great film", "wonderful acting", "great fun", "a wonderful , moving story"]
    negative = ["a dull film", "terrible acting", "dull and boring", "a terrible , boring mess"]
    rows = [f"{text} \t1" for text in positive] + [f"{text} \t0" for text in negative]
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * 5) + "\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\ngreat , moving acting \t1\nboring , dull story \t0\n")
    return root


def test_sst2_bilstm_runs_and_evaluates_a_new_file(sst_root, tmp_path):
    run_dir = tmp_path / "run"
    train(
        "experiment=sst2_bilstm",
        f"data.root={sst_root}",
        "tokenizer.vocab_size=40",
        "task.embedding_dim=16",
        "encoder.hidden_size=16",
        "trainer.max_epochs=3",
        "trainer.val_check_interval=1.0",
        *SHRINK,
        run_dir=run_dir,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/acc", "val/macro_f1", "val/f1/0", "val/recall/1"} <= set(metrics)
    assert "test/acc" not in metrics  # SST-2's labelled test split is not distributed
    assert (run_dir / "report.md").is_file()
    new_reviews = tmp_path / "new.tsv"
    rows = [("wonderful fun", "1"), ("a boring film", "0"), ("great , moving story", "1"), ("dull mess", "0")]
    new_reviews.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    scores = json.loads(
        command(
            "seqtasks.evaluate", f"ckpt={ckpt}", f"test={new_reviews}", f"output={tmp_path / 'scores' / 'metrics.json'}"
        ).stdout
    )
    predicted = load_task(ckpt).predict_labels([text for text, _ in rows])
    # evaluate scores the file with the checkpoint's own predictions, label by label
    assert scores["test/acc"] == sum(p == label for p, (_, label) in zip(predicted, rows, strict=True)) / len(rows)
    assert (tmp_path / "scores" / "metrics.confusion_matrix.png").exists()


def test_names_generate_runs_with_an_agreement_classifier(tmp_path):
    folder = tmp_path / "data" / "names" / "by_language"
    folder.mkdir(parents=True)
    (folder / "Russian.txt").write_text("\n".join(f"{s}ov" for s in ("Ivan", "Petr", "Sokol", "Volk", "Orl")) + "\n")
    (folder / "Spanish.txt").write_text("\n".join(f"{s}ez" for s in ("Gonzal", "Lop", "Per", "Gom", "Sanch")) + "\n")
    data = [f"data.root={tmp_path / 'data'}", "data.fractions=[0.6,0.2,0.2]"]
    classifier = tmp_path / "classifier"
    train(
        "experiment=names_classify",
        *data,
        "encoder.hidden_size=8",
        "trainer.max_epochs=1",
        "early_stopping.patience=null",
        *SHRINK,
        run_dir=classifier,
    )
    run_dir = tmp_path / "generate"
    train(
        "experiment=names_generate",
        *data,
        "encoder.hidden_size=16",
        "task.sample_metrics.per_category=5",
        f"task.agreement_classifier={classifier / 'checkpoints' / 'best.ckpt'}",
        "trainer.max_epochs=2",
        *SHRINK,
        run_dir=run_dir,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/loss", "test/novelty", "test/agreement", "test/agreement/Russian"} <= set(metrics)
    assert (run_dir / "report.md").is_file() and (classifier / "report.md").is_file()
    rows = [line.split("\t") for line in (run_dir / "samples.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 2 * 5
    # agreement: the share of samples the classifier assigns to the language they were sampled for
    agreeing = sum(label == category for category, _, _, label in rows) / len(rows)
    assert metrics["test/agreement"] == pytest.approx(agreeing)  # logged as a float32
