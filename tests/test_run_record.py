"""A command that is refused changes nothing in an existing run's directory: not its checkpoints,
not Hydra's record of it (.hydra/), not its log; and resume=auto without the run's directory is
refused instead of silently starting a new run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_LM, TINY_TEXT, seqtasks


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()
    }


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("data")
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_text(TINY_TEXT)
    run_dir = tmp_path_factory.mktemp("run")
    overrides = [*TINY_LM, f"data.root={root}", "samples.every_n_steps=0", "logger=csv"]
    seqtasks(*overrides, f"hydra.run.dir={run_dir}")
    return run_dir, overrides


@pytest.mark.slow
def test_the_run_keeps_hydras_record_and_its_log(cli_run):
    run_dir, _ = cli_run
    assert "encoder.hidden_size=16" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "hidden_size: 16" in (run_dir / ".hydra" / "config.yaml").read_text()
    assert "run:" in (run_dir / ".hydra" / "hydra.yaml").read_text()
    assert "metrics:" in (run_dir / "cli.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    "change",
    [
        [],  # a fresh run into the directory of another
        ["resume=auto", "encoder.hidden_size=64"],  # a resume whose config is not the run's
    ],
)
def test_a_refused_command_changes_nothing_in_the_run_directory(cli_run, change):
    run_dir, overrides = cli_run
    (run_dir / "checkpoints" / ".last.ckpt.x.partial").write_bytes(b"left by a killed write")
    before = snapshot(run_dir)
    result = seqtasks(*overrides, "encoder.hidden_size=64", *change, f"hydra.run.dir={run_dir}", check=False)
    assert result.returncode == 2, result.stderr
    assert snapshot(run_dir) == before
    (run_dir / "checkpoints" / ".last.ckpt.x.partial").unlink()


def test_resume_auto_without_the_run_directory_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqtasks", "resume=auto"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "hydra.run.dir=" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()  # no new run was started
