"""Trust: a run that crashes resumes to exactly the run that did not; run directories are never
overwritten; an interrupt saves and validates; checkpoints load with weights_only=True, a pickle
that would run code is refused, and a model exports to safetensors; two runs of one seed agree."""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FP32, TINY_LM, TINY_TEXT, command, seqtasks, train

from seqtasks.errors import ConfigError, SeqtasksError
from seqtasks.runtime.build import load_task
from seqtasks.runtime.checkpoint import load_checkpoint
from seqtasks.tasks.language_model import LanguageModelTask
from seqtasks.tasks.translation import TranslationTask

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_text(TINY_TEXT)
    return root


# 12 steps of a language model with dropout and a weight average, validated every 5 steps, a
# checkpoint every 4: a crash at step 7 resumes from the validation checkpoint of step 5.
LM_RUN = [
    *TINY_LM,
    "trainer.max_steps=12",
    "trainer.val_check_interval=5",
    "checkpoint.every_n_steps=4",
    "head.dropout=0.3",
    "ema.decay=0.9",
    "samples.every_n_steps=0",
    "logger=csv",
]


def crash_at(monkeypatch, task_class, step: int) -> None:
    """The next run dies with an error at this step, as a killed process would: nothing after it."""
    original = task_class.training_loss

    def crashing(self, batch):
        if self.global_step == step:
            raise RuntimeError("simulated crash")
        return original(self, batch)

    monkeypatch.setattr(task_class, "training_loss", crashing)


def weights(run_dir: Path, name: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / name)["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
@pytest.mark.parametrize("shift", ["false", "true"])
def test_a_language_model_killed_midway_resumes_to_the_uninterrupted_run(data_root, tmp_path, monkeypatch, shift):
    data = f"data.root={data_root}"
    whole = train(*LM_RUN, data, f"data.shift_each_epoch={shift}", run_dir=tmp_path / "whole")
    with monkeypatch.context() as patch:
        crash_at(patch, LanguageModelTask, 7)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train(*LM_RUN, data, f"data.shift_each_epoch={shift}", run_dir=tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["global_step"] == 5
    resumed = train(*LM_RUN, data, f"data.shift_each_epoch={shift}", "resume=auto", run_dir=tmp_path / "resumed")
    assert resumed == whole  # every metric, to the last bit
    for name in ("last.ckpt", "best.ckpt"):
        assert_same_weights(weights(tmp_path / "resumed", name), weights(tmp_path / "whole", name))
    # The log reads as one run's: the crashed run's rows after its last checkpoint are not kept twice.
    assert logged_losses(tmp_path / "resumed") == logged_losses(tmp_path / "whole")
    assert [step for step, _ in logged_losses(tmp_path / "whole")] == list(range(12))


def logged_losses(run_dir: Path) -> list[tuple[int, str]]:
    with open(run_dir / "csv" / "version_0" / "metrics.csv", newline="") as file:
        return [(int(row["step"]), row["train/loss"]) for row in csv.DictReader(file) if row["train/loss"]]


@pytest.mark.slow
def test_a_translation_run_killed_midway_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch):
    from tasks.test_translation_task import TINY_TRANSLATION, reversal_pairs, write_tsv

    train_file = write_tsv(tmp_path / "train.tsv", reversal_pairs(300, 0))
    val = write_tsv(tmp_path / "val.tsv", reversal_pairs(20, 1))
    args = [
        *[a for a in TINY_TRANSLATION if not a.startswith(("trainer.max_epochs", "task.dropout"))],
        "task.dropout=0.2",
        "trainer.max_steps=10",
        "trainer.max_epochs=-1",
        "trainer.val_check_interval=4",
        "checkpoint.every_n_steps=3",
        "data.max_tokens=300",
        f"data.train={train_file}",
        f"data.val={val}",
        f"data.test={val}",
        "attention_images.sentences=0",
        "logger=[]",
    ]
    whole = train(*args, run_dir=tmp_path / "whole")
    with monkeypatch.context() as patch:
        crash_at(patch, TranslationTask, 7)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train(*args, run_dir=tmp_path / "resumed")
    resumed = train(*args, "resume=auto", run_dir=tmp_path / "resumed")
    assert resumed == whole and whole["val/bleu"] > 0
    assert_same_weights(weights(tmp_path / "resumed", "last.ckpt"), weights(tmp_path / "whole", "last.ckpt"))


def test_a_run_directory_is_resumed_or_refused_never_overwritten(data_root, tmp_path):
    args = [*TINY_LM, f"data.root={data_root}", "samples.every_n_steps=0", "logger=[]"]
    train(*args, run_dir=tmp_path)
    best = (tmp_path / "checkpoints" / "best.ckpt").read_bytes()
    with pytest.raises(
        ConfigError,
        match=r"already holds a run \(best.ckpt, last.ckpt in checkpoints/\): continue it "
        r"with resume=auto",
    ):
        train(*args, run_dir=tmp_path)
    assert (tmp_path / "checkpoints" / "best.ckpt").read_bytes() == best
    with pytest.raises(
        ConfigError,
        match=r"resume: this command differs from the run it continues in "
        r"encoder.hidden_size=32 \(the run: 16\)",
    ):
        train(*args, "encoder.hidden_size=32", "resume=auto", run_dir=tmp_path)


def test_stale_partial_files_of_a_killed_write_are_removed(data_root, tmp_path):
    (tmp_path / "checkpoints").mkdir(parents=True)
    stale = tmp_path / "checkpoints" / ".last.ckpt.abc123.partial"
    stale.write_bytes(b"half a checkpoint")
    train(*TINY_LM, f"data.root={data_root}", "samples.every_n_steps=0", "logger=[]", run_dir=tmp_path)
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


@pytest.mark.slow
def test_ctrl_c_saves_the_current_step_validates_it_and_exits_130(data_root, tmp_path):
    # A run long enough to be interrupted: it waits until a checkpoint of step 4 exists, then Ctrl-C.
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seqtasks",
            *TINY_LM,
            "trainer.max_steps=100000",
            "trainer.max_epochs=-1",
            "checkpoint.every_n_steps=4",
            "samples.every_n_steps=0",
            "logger=[]",
            f"data.root={data_root}",
            f"hydra.run.dir={tmp_path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "WANDB_MODE": "offline"},
    )
    last = tmp_path / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err.decode()[-2000:]
    checkpoint = load_checkpoint(last)
    step = checkpoint["global_step"]
    assert step >= 4 and f"interrupted at step {step}" in err.decode()
    assert checkpoint["epoch"] == 0  # mid-epoch (about 40 steps each): a resume goes on with its rest
    assert "val/loss" in json.loads((tmp_path / "metrics.json").read_text())


def test_checkpoints_are_plain_data_and_load_with_weights_only(data_root, tmp_path):
    train(
        *TINY_LM,
        f"data.root={data_root}",
        "samples.every_n_steps=0",
        "ema.decay=0.9",
        "logger=[]",
        "early_stopping.patience=2",
        run_dir=tmp_path,
    )
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(tmp_path / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert checkpoint["seqtasks"]["task"] == "language_model" and checkpoint["state_dict"]


class RunsCode:
    def __reduce__(self):
        return os.system, ("touch pwned",)


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.ckpt"
    torch.save({"seqtasks": {"task": "language_model"}, "payload": RunsCode()}, evil)
    with pytest.raises(SeqtasksError, match=r"evil.ckpt: refused: this file's pickle would build Python objects"):
        load_checkpoint(evil)
    result = command("seqtasks.predict", f"ckpt={evil}", check=False)
    assert result.returncode == 2 and "refused" in result.stderr
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(pickle.UnpicklingError):  # the same file, loaded the unsafe way, would have run it
        torch.load(evil, weights_only=True)


def test_a_truncated_checkpoint_is_named_as_such(data_root, tmp_path):
    train(*TINY_LM, f"data.root={data_root}", "samples.every_n_steps=0", "logger=[]", run_dir=tmp_path)
    whole = (tmp_path / "checkpoints" / "best.ckpt").read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SeqtasksError, match=r"cut.ckpt: not a readable checkpoint \(.*truncated or corrupt\?"):
        load_checkpoint(cut)


def test_export_writes_a_portable_model_directory_that_predict_takes(data_root, tmp_path):
    run = tmp_path / "run"
    train(*TINY_LM, f"data.root={data_root}", "samples.every_n_steps=0", "logger=[]", run_dir=run)
    ckpt, exported = run / "checkpoints" / "best.ckpt", tmp_path / "model"
    command("seqtasks.export", f"ckpt={ckpt}", f"output={exported}")
    assert sorted(p.name for p in exported.iterdir()) == ["config.yaml", "model.safetensors", "tokenizers"]
    args = ["prime=First", "length=30", "decoding=greedy"]
    assert (
        command("seqtasks.predict", f"ckpt={exported}", *args).stdout
        == command("seqtasks.predict", f"ckpt={ckpt}", *args).stdout
    )
    assert_same_weights(load_task(exported).state_dict(), load_task(ckpt).state_dict())


def test_a_checkpoint_never_imports_code_and_names_the_plugin_it_needs(data_root, tmp_path):
    plugin = tmp_path / "my_cell.py"
    plugin.write_text(
        "from seqtasks.encoders.rnn import GRUEncoder\nfrom seqtasks.configuration.registry import ENCODERS\n\n\n"
        "@ENCODERS.register('my_gru')\nclass MyGRU(GRUEncoder):\n    '''A GRU under another name.'''\n"
    )
    run = tmp_path / "run"
    train(
        *TINY_LM,
        f"data.root={data_root}",
        "samples.every_n_steps=0",
        "logger=[]",
        f"plugins=[{plugin}]",
        "encoder=gru",
        "encoder.name=my_gru",
        run_dir=run,
    )
    ckpt = run / "checkpoints" / "best.ckpt"
    # In a fresh process, without the plugin: the error says which one to pass.
    result = seqtasks(f"ckpt={ckpt}", "prime=a", "length=5", module="seqtasks.predict", check=False)
    assert result.returncode == 2 and f"plugins=[{plugin}]" in result.stderr, result.stderr
    assert seqtasks(f"ckpt={ckpt}", "prime=a", "length=5", f"plugins=[{plugin}]", module="seqtasks.predict").stdout


def test_two_runs_of_one_seed_give_the_same_metrics_and_text(data_root, tmp_path):
    args = [*TINY_LM, f"data.root={data_root}", "head.dropout=0.3", "logger=[]", FP32]
    first = train(*args, run_dir=tmp_path / "a")
    second = train(*args, run_dir=tmp_path / "b")
    assert first == second
    assert (tmp_path / "a" / "samples.jsonl").read_text() == (tmp_path / "b" / "samples.jsonl").read_text()
    assert_same_weights(weights(tmp_path / "a", "best.ckpt"), weights(tmp_path / "b", "best.ckpt"))
