"""Shared fixtures: tiny data made here, configs composed from the real conf/ and shrunk."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir

from seqtasks import average, evaluate, export, inspect, predict, serve
from seqtasks import list as list_command
from seqtasks.configuration.compose import compose_config as compose_overrides
from seqtasks.configuration.compose import config_dir
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.registry import DATASETS
from seqtasks.run import run
from seqtasks.runtime.build import restore_task
from seqtasks.runtime.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

load_plugins()
# pytest-xdist runs the suite in parallel workers (pyproject's addopts): each gets its share of the
# cores, and the commands it starts inherit that share, so the workers do not oversubscribe them.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, min(2, (os.cpu_count() or 1) // WORKERS))
os.environ["OMP_NUM_THREADS"] = str(THREADS)
torch.set_num_threads(THREADS)
# Tokenised corpora are cached by content hash; the tests keep theirs apart from the user's cache,
# and remove it when the session ends.
os.environ["SEQTASKS_CACHE"] = tempfile.mkdtemp(prefix="seqtasks-test-cache-")
atexit.register(shutil.rmtree, os.environ["SEQTASKS_CACHE"], ignore_errors=True)
# Datasets download what is missing: a test that would reach for the network fails at once instead
# (a closed port on this machine); download tests set their own 127.0.0.1 mirror.
os.environ["SEQTASKS_MIRROR"] = "http://127.0.0.1:9"

TINY_TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 20

# Tests that train pin fp32, so that no figure hinges on whether this CPU has fast bf16.
FP32 = "trainer.precision=32-true"

# Overrides that make any language-model run take seconds.
TINY_LM = [
    FP32,
    "encoder.hidden_size=16",
    "encoder.num_layers=1",
    "task.embedding_dim=8",
    "task.tbptt_steps=16",
    "data.batch_size=4",
    "trainer.max_steps=6",
    "trainer.max_epochs=1",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "samples.every_n_steps=3",
    "samples.length=20",
]


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    """A directory with a two-language names set (data/names/by_language) and a classifier trained
    on it for two steps (run/checkpoints/best.ckpt): for tests of what commands do with a model.
    Read it, never write into it: the session's tests share it."""
    root = tmp_path_factory.mktemp("tiny_classifier")
    names = root / "data" / "names" / "by_language"
    names.mkdir(parents=True)
    (names / "Russian.txt").write_text("".join(f"Ivanov{i}\n" for i in range(30)))
    (names / "Spanish.txt").write_text("".join(f"Garcia{i}\n" for i in range(30)))
    train(
        "experiment=names_classify",
        f"data.root={root / 'data'}",
        "encoder.hidden_size=8",
        "encoder.num_layers=1",
        "task.embedding_dim=8",
        "task.ngram_buckets=1024",
        "trainer.max_steps=2",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        "early_stopping.patience=null",
        "logger=[]",
        run_dir=root / "run",
    )
    return root


@pytest.fixture
def tiny_text_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


@pytest.fixture
def compose_config():
    """compose_config(overrides) -> the app's config as `python -m seqtasks <overrides>` builds it."""

    def _compose(overrides: list[str], name: str = "config"):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(name, overrides=overrides)

    return _compose


def seqtasks(*args, module="seqtasks", check=True, env=None, timeout=600, stdin=None):
    """Run `python -m <module> <args>` as a user would (wandb offline, no credentials)."""
    environment = {**os.environ, "WANDB_MODE": "offline", "NETRC": "/nonexistent", **(env or {})}
    environment.pop("WANDB_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        input=stdin,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result


def train(*overrides: str, run_dir: Path) -> dict:
    """`python -m seqtasks <overrides>` in this process (fp32), writing into run_dir -> its metrics."""
    return run(compose_overrides("config", [*overrides, FP32]), run_dir)


COMMANDS = {
    "seqtasks.average": average.main,
    "seqtasks.predict": predict.main,
    "seqtasks.evaluate": evaluate.main,
    "seqtasks.export": export.main,
    "seqtasks.inspect": inspect.main,
    "seqtasks.list": list_command.main,
    "seqtasks.serve": serve.main,
}


def command(module: str, *args: str, check: bool = True, stdin: str | None = None) -> SimpleNamespace:
    """`python -m <module> <args>` (a command of COMMANDS) in this process -> returncode, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    saved_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            COMMANDS[module](list(args))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stdin = saved_stdin
    result = SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    if check and code != 0:
        raise AssertionError(f"exit {code}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


def quiet_trainer(**options) -> L.Trainer:
    """A CPU Trainer that writes nothing (no logger, checkpoint, progress bar or summary) and skips the
    sanity validation, for tests that drive Lightning directly; options add to or replace these."""
    quiet = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return L.Trainer(**{**quiet, **options})


def smoothed_nll(log_probs: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy written out, the reference for the tasks' losses: log_probs
    (N, C), targets (N,) -> mean over N of (1 - smoothing) * the target's NLL + smoothing * the mean
    NLL over every class."""
    nll = -log_probs.gather(1, targets[:, None]).squeeze(1)  # (N,)
    return ((1 - smoothing) * nll - smoothing * log_probs.mean(-1)).mean()


def validate_in_one_process(ckpt: Path) -> dict[str, float]:
    """The validation metrics of a checkpoint's weights on its run's validation split, in this one
    process: what a DDP run's gathered metrics must equal."""
    checkpoint = load_checkpoint(ckpt)
    task = restore_task(checkpoint, with_callables=True)
    data = DATASETS.build(checkpoint["seqtasks"]["config"]["data"])
    data.use_tokenizers(task.tokenizers)
    return quiet_trainer(devices=1).validate(task, datamodule=data, verbose=False)[0]


def load_script(name: str):
    """scripts/<name>.py as a module (the scripts are not a package), for tests of their functions."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
