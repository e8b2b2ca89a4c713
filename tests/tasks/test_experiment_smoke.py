"""Smoke runs of the tuned experiments not driven elsewhere (names_classify: test_classification_task,
ud_ewt_pos: test_tagging_task): the real experiment config, shrunk, on tiny data made here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import seqtasks

SHRINK = ["trainer.max_time=null", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0",
          "logger={}"]


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
    seqtasks("experiment=sst2_bilstm", f"data.root={sst_root}", "tokenizer.vocab_size=40", "task.embedding_dim=16",
             "encoder.hidden_size=16", "trainer.max_epochs=3", "trainer.val_check_interval=1.0",
             "trainer.precision=32-true", *SHRINK, f"hydra.run.dir={run_dir}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/acc", "val/macro_f1", "val/f1/0", "val/recall/1"} <= set(metrics)
    assert "test/acc" not in metrics  # SST-2's labelled test split is not distributed
    new_reviews = tmp_path / "new.tsv"
    new_reviews.write_text("sentence\tlabel\nwonderful fun\t1\na boring film\t0\n")
    scores = json.loads(seqtasks(f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}", f"test={new_reviews}",
                                 f"output={tmp_path / 'scores' / 'metrics.json'}", module="seqtasks.evaluate").stdout)
    assert 0.0 <= scores["test/acc"] <= 1.0 and (tmp_path / "scores" / "confusion_matrix.png").exists()


def test_names_generate_runs_with_an_agreement_classifier(tmp_path):
    folder = tmp_path / "data" / "names" / "by_language"
    folder.mkdir(parents=True)
    (folder / "Russian.txt").write_text("\n".join(f"{s}ov" for s in ("Ivan", "Petr", "Sokol", "Volk", "Orl")) + "\n")
    (folder / "Spanish.txt").write_text("\n".join(f"{s}ez" for s in ("Gonzal", "Lop", "Per", "Gom", "Sanch")) + "\n")
    data = [f"data.root={tmp_path / 'data'}", "data.fractions=[0.6,0.2,0.2]"]
    classifier = tmp_path / "classifier"
    seqtasks("experiment=names_classify", *data, "encoder.hidden_size=8", "trainer.max_epochs=1",
             "early_stopping.patience=null", *SHRINK, f"hydra.run.dir={classifier}")
    run_dir = tmp_path / "generate"
    seqtasks("experiment=names_generate", *data, "encoder.hidden_size=16", "task.samples_per_category=5",
             f"task.agreement_classifier={classifier / 'checkpoints' / 'best.ckpt'}", "trainer.max_epochs=2",
             *SHRINK, f"hydra.run.dir={run_dir}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/loss", "test/novelty", "test/agreement", "test/agreement/Russian"} <= set(metrics)
    assert 0.0 <= metrics["test/agreement"] <= 1.0
    assert len((run_dir / "samples.tsv").read_text().splitlines()) == 1 + 2 * 5
