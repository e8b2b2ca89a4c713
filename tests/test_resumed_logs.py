"""A run stopped by Ctrl-C or killed, then resumed, leaves the CSV log an uninterrupted run leaves:
the same columns, a step column that never goes back, and telemetry at the same steps."""

from __future__ import annotations

import csv
import signal
from pathlib import Path

import pytest
from conftest import TINY_LM, TINY_TEXT, train
from test_resume import crash_at

from seqtasks.errors import Interrupted
from seqtasks.tasks.language_model import LanguageModelTask

# 12 steps, logged every 3 (steps 2, 5, 8, 11), validated every 5, a checkpoint every 3, gates and
# gradient flow measured every 4 (steps 0, 4, 8). A stop during step 5 resumes between two
# measurements: at step 6 after Ctrl-C (it saves the step it stops at), at 5 after a kill (the
# checkpoint of the validation before it).
RUN = [
    *TINY_LM,
    "trainer.max_steps=12",
    "trainer.log_every_n_steps=3",
    "trainer.val_check_interval=5",
    "checkpoint.every_n_steps=3",
    "telemetry.every_n_steps=4",
    "samples.every_n_steps=0",
    "logger=csv",
]
TELEMETRY = ("grad/", "gates/", "gradflow/", "time/")


def interrupt_at(monkeypatch, task_class, step: int) -> None:
    """The next run gets a Ctrl-C (SIGINT) during this step, as from a terminal."""
    original = task_class.training_loss

    def interrupted(self, batch):
        if self.global_step == step:
            signal.raise_signal(signal.SIGINT)
        return original(self, batch)

    monkeypatch.setattr(task_class, "training_loss", interrupted)


def read_log(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run_dir / "csv" / "version_0" / "metrics.csv", newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)


def telemetry_steps(rows: list[dict[str, str]]) -> dict[str, list[int]]:
    """Each telemetry column -> the steps of the rows that hold a value of it."""
    steps: dict[str, list[int]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith(TELEMETRY) and value:
                steps.setdefault(key, []).append(int(row["step"]))
    return steps


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> tuple[list[str], Path]:
    """RUN on tiny text, and the directory of its uninterrupted run (one for every way of stopping)."""
    root = tmp_path_factory.mktemp("whole")
    (root / "tiny.txt").write_text(TINY_TEXT)
    args = [*RUN, "data=text_file", f"data.path={root / 'tiny.txt'}"]
    train(*args, run_dir=root / "run")
    return args, root / "run"


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "error"), [(interrupt_at, Interrupted), (crash_at, RuntimeError)])
def test_a_stopped_and_resumed_run_logs_as_the_uninterrupted_run(whole, tmp_path, monkeypatch, stop, error):
    args, whole_dir = whole
    with monkeypatch.context() as patch:
        stop(patch, LanguageModelTask, 5)
        with pytest.raises(error):
            train(*args, run_dir=tmp_path)
    train(*args, "resume=auto", run_dir=tmp_path)
    whole_columns, whole_rows = read_log(whole_dir)
    columns, rows = read_log(tmp_path)
    assert sorted(columns) == sorted(whole_columns)
    steps = [int(row["step"]) for row in rows]
    assert steps == sorted(steps) and steps[-1] == int(whole_rows[-1]["step"])
    # Measured every 4 steps, logged at the steps measured: not repeated until the epoch ends.
    assert telemetry_steps(whole_rows)["gates/encoder/rnn/layer0/forget_saturated"] == [0, 4, 8]
    assert telemetry_steps(rows) == telemetry_steps(whole_rows)
