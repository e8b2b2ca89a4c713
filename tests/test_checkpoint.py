"""AtomicCheckpointIO never leaves a half-written checkpoint; load_checkpoint fails clearly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import seqtasks.runtime.checkpoint
from seqtasks.errors import SeqtasksError
from seqtasks.runtime.checkpoint import AtomicCheckpointIO, load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _checkpoint(value: float = 1.0) -> dict:
    return {
        "seqtasks": {"task": "language_model", "version": 1},
        "epoch": 3,
        "state_dict": {"encoder.weight": torch.full((4, 5), value), "head.bias": torch.arange(7.0) * value},
        "hyper_parameters": {"hidden_size": 5, "plugins": [], "tokenizers": {}},
    }


def _assert_same(loaded: dict, expected: dict) -> None:
    assert loaded.keys() == expected.keys()
    assert loaded["seqtasks"] == expected["seqtasks"]
    assert loaded["epoch"] == expected["epoch"]
    assert loaded["hyper_parameters"] == expected["hyper_parameters"]
    assert loaded["state_dict"].keys() == expected["state_dict"].keys()
    for key, tensor in expected["state_dict"].items():
        assert torch.equal(loaded["state_dict"][key], tensor)


def _partials(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".partial"))


def test_save_then_load_round_trip(tmp_path):
    path = tmp_path / "nested" / "dir" / "last.ckpt"  # parent directories are created
    checkpoint = _checkpoint(2.5)
    AtomicCheckpointIO().save_checkpoint(checkpoint, path)
    assert path.is_file()
    # The file holds a digest of the rest, which loading checks and drops.
    raw = torch.load(path, map_location="cpu", weights_only=True)
    tensors = {f"checkpoint['state_dict'][{name!r}]" for name in checkpoint["state_dict"]}
    assert set(raw.pop("digest")["tensors"]) == tensors
    _assert_same(raw, checkpoint)
    _assert_same(load_checkpoint(path), checkpoint)
    _assert_same(load_checkpoint(str(path)), checkpoint)
    assert os.listdir(path.parent) == ["last.ckpt"]


def test_save_replaces_an_existing_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(_checkpoint(1.0), path)
    io.save_checkpoint(_checkpoint(3.0), str(path))
    _assert_same(load_checkpoint(path), _checkpoint(3.0))
    assert os.listdir(tmp_path) == ["last.ckpt"]


class _Interrupted(BaseException):
    """Like KeyboardInterrupt: not an Exception, so only `finally` blocks see it."""


def _interrupting_save(obj, f, *args, **kwargs):
    f.write(b"PK\x03\x04 half of a checkpoint" * 1000)
    raise _Interrupted()


def test_interrupted_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(_checkpoint(1.0), path)
    before = path.read_bytes()

    monkeypatch.setattr(seqtasks.runtime.checkpoint.torch, "save", _interrupting_save)
    with pytest.raises(_Interrupted):
        io.save_checkpoint(_checkpoint(9.0), path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert _partials(tmp_path) == []
    assert os.listdir(tmp_path) == ["last.ckpt"]
    _assert_same(load_checkpoint(path), _checkpoint(1.0))


def test_interrupted_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(seqtasks.runtime.checkpoint.torch, "save", _interrupting_save)
    with pytest.raises(_Interrupted):
        AtomicCheckpointIO().save_checkpoint(_checkpoint(), tmp_path / "last.ckpt")
    assert os.listdir(tmp_path) == []


def test_failing_write_propagates_the_error_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(_checkpoint(1.0), path)
    before = path.read_bytes()

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"x" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(seqtasks.runtime.checkpoint.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        AtomicCheckpointIO().save_checkpoint(_checkpoint(9.0), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.ckpt"]


# The child saves a ~50 MB checkpoint over an existing good one through a "disk" that stops after
# 2 MiB: it says so in a marker file and waits there, so the parent kills it mid-write for certain,
# however busy the machine (no race between the write and the parent's polling).
_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import torch
    import seqtasks.runtime.atomic as atomic_module
    from seqtasks.runtime.checkpoint import AtomicCheckpointIO

    real_fdopen = os.fdopen
    marker = Path(sys.argv[2])

    class StallingDisk:
        def __init__(self, f):
            self.f, self.written = f, 0
        def write(self, data):
            view = memoryview(data).cast("B")
            for start in range(0, len(view), 1 << 20):
                self.f.write(view[start:start + (1 << 20)])
                self.f.flush()
                self.written += len(view[start:start + (1 << 20)])
                if self.written >= 2 << 20 and not marker.exists():
                    marker.write_text(str(self.written))
                    time.sleep(600)  # the parent kills us here
            return len(view)
        def flush(self):
            self.f.flush()
        def fileno(self):
            return self.f.fileno()
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.f.close()

    atomic_module.os.fdopen = lambda *args, **kwargs: StallingDisk(real_fdopen(*args, **kwargs))
    big = {"seqtasks": {"task": "language_model", "version": 2},
           "state_dict": {"big": torch.full((12_500_000,), 7.0)}}  # 50 MB
    AtomicCheckpointIO().save_checkpoint(big, sys.argv[1])
    print("SAVED", flush=True)
    """
)


def test_sigkill_during_write_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(_checkpoint(1.0), path)
    before = path.read_bytes()
    marker = tmp_path.parent / f"{tmp_path.name}.halfway"

    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(marker)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None and not marker.exists():
            time.sleep(0.05)
        still_running = child.poll() is None
        partials = _partials(tmp_path)
        partial_size = (tmp_path / partials[0]).stat().st_size if partials else 0
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        out, err = child.communicate(timeout=30)
    assert still_running and marker.exists(), (
        f"child finished or failed before it could be killed:\n{out.decode()}\n{err.decode()}"
    )
    assert child.returncode == -signal.SIGKILL
    assert b"SAVED" not in out
    assert 2 << 20 <= partial_size < 50_000_000  # killed mid-write

    # The target is untouched and still loads; the dying process could not remove its .partial.
    assert path.read_bytes() == before
    _assert_same(load_checkpoint(path), _checkpoint(1.0))
    leftovers = _partials(tmp_path)
    assert leftovers and all(name.startswith(".last.ckpt.") for name in leftovers)
    # A half-written file is rejected with a clear error that names it.
    half = tmp_path / leftovers[0]
    with pytest.raises(SeqtasksError, match="not a readable checkpoint") as caught:
        load_checkpoint(half)
    assert str(half) in str(caught.value)


def test_load_checkpoint_missing_path(tmp_path):
    path = tmp_path / "absent.ckpt"
    with pytest.raises(SeqtasksError, match="not found") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)


def test_a_directory_that_is_no_exported_model_is_named_so(tmp_path):
    with pytest.raises(SeqtasksError, match=r"not a seqtasks model directory: model.safetensors is missing"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "content", [b"", b"this is not a checkpoint\n", os.urandom(4096)], ids=["empty", "text", "random"]
)
def test_load_checkpoint_garbage_file(tmp_path, content):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(content)
    with pytest.raises(SeqtasksError, match="not a readable checkpoint") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "obj",
    [{"state_dict": {"w": torch.ones(2)}}, torch.arange(5), [1, 2, 3], 42, None],
    ids=["dict-without-seqtasks", "tensor", "list", "int", "none"],
)
def test_load_checkpoint_rejects_non_seqtasks_files(tmp_path, obj):
    path = tmp_path / "other.ckpt"
    torch.save(obj, path)
    with pytest.raises(SeqtasksError, match="not a seqtasks checkpoint") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "entry, value, named",
    [
        ("hyper_parameters", ["not", "a", "mapping"], "['hyper_parameters']"),
        ("seqtasks", {"task": {"_target_": "os.system"}}, "['seqtasks']['task']"),
        ("state_dict", {"encoder.weight": "not a tensor"}, "['state_dict']"),
    ],
)
def test_a_checkpoint_whose_entries_are_of_the_wrong_kind_fails_naming_the_entry(tmp_path, entry, value, named):
    path = tmp_path / "odd.ckpt"
    AtomicCheckpointIO().save_checkpoint({**_checkpoint(), entry: value}, path)
    with pytest.raises(SeqtasksError, match=re.escape(f"{path}: not a seqtasks checkpoint: {named}")):
        load_checkpoint(path)
