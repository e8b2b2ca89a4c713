"""report.md: written from a hand-made run directory (metrics, Lightning-style CSV log, the run's
figures and samples), never failing the run, and at the end of tiny real runs, interrupted and
resumed ones included."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import TINY_LM, TINY_TEXT, train
from PIL import Image

from seqtasks.analysis.figures import at_steps
from seqtasks.callbacks import LastCheckpoint
from seqtasks.errors import Interrupted
from seqtasks.runtime import report
from seqtasks.runtime.report import write_report

METRICS = {
    "test/acc": 0.8125,
    "test/loss": 0.4375,
    "test/sacrebleu_signature": "nrefs:1|case:mixed",
    "val/acc": 0.875,
    "val/loss": 0.3125,
}

# As Lightning's CSV writer lays it out: one row per log call, keys sorted, empty cells for the keys
# a call did not log. The last val row is run()'s final validation of the best checkpoint.
HEADER = "epoch,lr-Adam,step,{time}train/loss,val/acc,val/loss"
ROWS = [
    ",0.001,0,{t0}2.5,,",
    ",0.001,1,{t1}2.0,,",
    "0,,1,{empty},0.5,1.5",
    ",0.001,2,{t2}1.25,,",
    ",0.001,3,{t3}1.0,,",
    "0,,3,{empty},0.875,0.3125",
    "1,,4,{empty},0.875,0.3125",
]


def csv_log(wall_time: bool) -> str:
    times = {f"t{i}": f"{10.0 * (i + 1)}," if wall_time else "" for i in range(4)}
    empty = "," if wall_time else ""
    header = HEADER.format(time="time/train_seconds," if wall_time else "")
    return "\n".join([header, *(row.format(empty=empty, **times) for row in ROWS)]) + "\n"


def make_run_dir(root: Path, wall_time: bool = False) -> Path:
    run_dir = root / "run"
    (run_dir / "csv" / "version_0").mkdir(parents=True)
    (run_dir / "csv" / "version_0" / "metrics.csv").write_text(csv_log(wall_time))
    (run_dir / "metrics.json").write_text(json.dumps(METRICS, indent=2))
    (run_dir / "config.yaml").write_text("task:\n  name: classification\nplugins: []\n")
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- task=classification\n- encoder.hidden_size=8\n")
    (run_dir / "attention").mkdir()
    for name in ("attention/val_0.png", "attention/val_1.png", "confusion_matrix.png"):
        Image.new("RGB", (4, 4)).save(run_dir / name)
    samples = [
        {"step": 200, "temperature": 0.5, "text": "early sample"},
        {"step": 200, "temperature": 1.0, "text": "early wild sample"},
        {"step": 400, "temperature": 0.5, "text": "ROMEO:\nlate ```sample```"},
        {"step": 400, "temperature": 1.0, "text": "late wild sample"},
    ]
    (run_dir / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return run_dir


def opens_as_png(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        return image.size


def test_a_report_has_the_command_metrics_curves_figures_and_last_samples(tmp_path):
    run_dir = make_run_dir(tmp_path)
    assert write_report(run_dir) == run_dir / "report.md"
    text = (run_dir / "report.md").read_text()
    assert "# Run report: classification" in text
    assert "selected by `val/acc` (max)" in text  # the task's own checkpoint-selecting metric
    assert "python -m seqtasks task=classification encoder.hidden_size=8" in text
    assert "| acc | 0.875 | 0.8125 |" in text and "| loss | 0.3125 | 0.4375 |" in text
    assert "`nrefs:1\\|case:mixed`" in text  # a pipe in a value does not break the table
    assert "steps only" in text and "time/train_seconds" in text
    for figure in ("report/loss.png", "report/acc.png"):
        assert f"]({figure})" in text
        opens_as_png(run_dir / figure)
    for link in ("attention/val_0.png", "attention/val_1.png", "confusion_matrix.png", "samples.jsonl"):
        assert f"]({link})" in text
    assert "at step 400" in text and "late wild sample" in text and "early" not in text
    assert "````\nROMEO:\nlate ```sample```\n````" in text  # the sample's backticks do not end its block


def test_curves_leave_out_the_final_validation_and_draw_it_as_the_best_checkpoint(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(report, "_draw", lambda path, name, series, best, wall_time: drawn.update({name: series}))
    write_report(make_run_dir(tmp_path))
    assert drawn["loss"] == {
        "train/loss": [(0, 2.5), (1, 2.0), (2, 1.25), (3, 1.0)],  # empty cells are not points
        "val/loss": [(1, 1.5), (3, 0.3125)],
    }
    assert drawn["acc"] == {"val/acc": [(1, 0.5), (3, 0.875)]}


def test_with_training_time_the_curves_are_drawn_against_steps_and_time(tmp_path):
    with_time = make_run_dir(tmp_path / "a", wall_time=True)
    write_report(with_time)
    text = (with_time / "report.md").read_text()
    assert "against training time (`time/train_seconds`)" in text and "steps only" not in text
    steps_only = make_run_dir(tmp_path / "b")
    write_report(steps_only)
    width, _ = opens_as_png(with_time / "report" / "loss.png")
    assert width > 1.5 * opens_as_png(steps_only / "report" / "loss.png")[0]  # a second panel
    assert at_steps([(0, 10.0), (1, 20.0), (3, 40.0)], [1, 2, 3]) == [20.0, 30.0, 40.0]


def test_without_a_csv_log_the_report_has_the_metrics_and_says_why_there_are_no_curves(tmp_path):
    run_dir = make_run_dir(tmp_path)
    write_report(run_dir, csv_logs=[])
    text = (run_dir / "report.md").read_text()
    assert "| acc | 0.875 | 0.8125 |" in text and "No CSV log" in text
    assert not (run_dir / "report").exists()


def test_a_figure_that_fails_is_named_and_the_report_is_still_written(tmp_path, monkeypatch, caplog):
    def broken(path, *args):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(report, "_draw", broken)
    run_dir = make_run_dir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="seqtasks.runtime.report"):
        assert write_report(run_dir) == run_dir / "report.md"
    assert "Could not draw the loss curve (RuntimeError: no fonts)" in (run_dir / "report.md").read_text()
    assert "no fonts" in caplog.text


def test_an_unreadable_csv_log_leaves_the_curves_out_and_the_rest_in(tmp_path):
    run_dir = make_run_dir(tmp_path)
    (run_dir / "csv" / "version_0" / "metrics.csv").write_bytes(b"step,train/loss\n\xff\xfe,1.0\n")
    write_report(run_dir)
    text = (run_dir / "report.md").read_text()
    assert "Could not read the CSV log (UnicodeDecodeError" in text and "| acc | 0.875 | 0.8125 |" in text


def test_a_report_that_fails_is_a_warning_and_leaves_the_previous_report(tmp_path, monkeypatch, caplog):
    run_dir = make_run_dir(tmp_path)
    (run_dir / "report.md").write_text("previous report\n")
    monkeypatch.setattr(report, "_report", lambda *args: 1 / 0)
    with caplog.at_level(logging.WARNING, logger="seqtasks.runtime.report"):
        assert write_report(run_dir) is None
    assert (run_dir / "report.md").read_text() == "previous report\n"
    assert "ZeroDivisionError" in caplog.text
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".report.md")] == []  # no partial file


@pytest.fixture
def data_root(tmp_path) -> Path:
    (tmp_path / "data" / "tinyshakespeare").mkdir(parents=True)
    (tmp_path / "data" / "tinyshakespeare" / "input.txt").write_text(TINY_TEXT)
    return tmp_path / "data"


@pytest.mark.parametrize("logger", ["csv", "tensorboard"])
def test_a_tiny_run_writes_its_report(data_root, tmp_path, logger):
    run_dir = tmp_path / "run"
    options = [*TINY_LM, f"data.root={data_root}", "trainer.val_check_interval=3", f"logger={logger}"]
    metrics = train(*options, run_dir=run_dir)
    text = (run_dir / "report.md").read_text()
    assert "# Run report: language_model" in text and "selected by `val/loss` (min)" in text
    assert f"| loss | {metrics['val/loss']:.6g} |" in text and "Temperature 0.8" in text
    if logger == "csv":
        assert "](csv/version_0/metrics.csv)" in text
        opens_as_png(run_dir / "report" / "loss.png")
    else:
        assert "No CSV log" in text and not (run_dir / "report").exists()


def test_an_interrupted_run_has_a_report_and_its_resume_draws_the_whole_run(data_root, tmp_path, monkeypatch):
    drawn = {}
    draw = report._draw
    monkeypatch.setattr(
        report, "_draw", lambda path, name, series, *rest: (drawn.update(series), draw(path, name, series, *rest))
    )
    start = LastCheckpoint.on_fit_start

    def ctrl_c_at_once(self, trainer, task):
        start(self, trainer, task)
        self.interrupted = True  # as the SIGINT handler does: stop after this step

    run_dir = tmp_path / "run"
    # max_epochs=-1: the interrupted epoch counts as done, so max_steps is what has the resume train on.
    options = [*TINY_LM, f"data.root={data_root}", "samples.every_n_steps=0", "trainer.max_epochs=-1"]
    with monkeypatch.context() as patch:
        patch.setattr(LastCheckpoint, "on_fit_start", ctrl_c_at_once)
        with pytest.raises(Interrupted):
            train(*options, run_dir=run_dir)
    assert "val/loss" in (run_dir / "report.md").read_text()
    assert [step for step, _ in drawn["train/loss"]] == [0]
    train(*options, "resume=auto", run_dir=run_dir)
    assert [step for step, _ in drawn["train/loss"]] == [0, 1, 2, 3, 4, 5]  # the continued log: the whole run
