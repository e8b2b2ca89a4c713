"""Checkpoints that are safe to share: never left half-written, plain data plus tensors, loaded
with `torch.load(weights_only=True)`, and on CPU whatever trained them.

Saving turns everything Lightning and the task put into a checkpoint into plain data (dicts,
lists, strings, numbers, tensors; Lightning's AttributeDict becomes a dict), so that loading needs
no pickled class at all. A file whose pickle would build an object (and could so run code, e.g.
`os.system`) is refused, naming what it asked for. A checkpoint never imports a module either:
the components a plugin provides must be loaded by the user (`plugins=[...]`).
"""

from __future__ import annotations

import enum
import pickle
import zipfile
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from seqtasks.atomic import atomic_write
from seqtasks.errors import SeqtasksError
from seqtasks.model_dir import load_exported

PRIMITIVES = (str, int, float, bool, bytes, type(None))


def plain(value: Any, where: str = "checkpoint") -> Any:
    """value as plain data (what weights_only loading accepts); TypeError naming the entry otherwise."""
    if isinstance(value, (torch.Tensor, *PRIMITIVES)):
        return value
    if isinstance(value, dict):  # AttributeDict, OrderedDict
        return {key: plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list | tuple):  # a NamedTuple or torch.Size becomes a plain tuple
        items = [plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return plain(value.value, where)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(
        f"{where} holds a {type(value).__module__}.{type(value).__qualname__}, which is not plain "
        "data; a checkpoint may hold only tensors, numbers, strings, lists and dicts"
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes plain data to a temporary file beside the target, fsyncs, then renames over it: a kill
    during the write leaves the previous checkpoint intact and no partial file under the final name.
    Reads with weights_only=True."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        with atomic_write(path) as f:
            torch.save(plain(checkpoint), f)

    def load_checkpoint(self, path: _PATH, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return read_checkpoint(Path(path))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """torch.load(weights_only=True) with an error that says what is wrong with the file."""
    if not path.is_file():
        raise SeqtasksError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its index is at the end
        raise SeqtasksError(
            f"{path}: not a readable checkpoint (not a complete PyTorch archive: truncated or corrupt?)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = str(error).split("\n")
        asked = next((line.strip() for line in detail if "GLOBAL" in line or "Unsupported" in line), detail[0])
        raise SeqtasksError(
            f"{path}: refused: this file's pickle would build Python objects, which could run code "
            f"on loading ({asked}); seqtasks checkpoints hold only tensors and plain data"
        ) from None
    except Exception as error:  # zip reader errors, OSError on a truncated file, EOFError, ...
        first = str(error).strip().split("\n")[0]
        raise SeqtasksError(f"{path}: not a readable checkpoint (truncated or corrupt? {first})") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a seqtasks checkpoint (or a model directory written by `seqtasks.export`) onto the CPU,
    with a clear error for anything else."""
    path = Path(path)
    checkpoint = load_exported(path) if path.is_dir() else read_checkpoint(path)
    if not isinstance(checkpoint, dict) or "seqtasks" not in checkpoint:
        raise SeqtasksError(f"{path}: not a seqtasks checkpoint (no 'seqtasks' entry)")
    return checkpoint
