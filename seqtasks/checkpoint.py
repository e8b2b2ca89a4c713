"""Checkpoints that are never left half-written, and that load on CPU whatever trained them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from seqtasks.atomic import atomic_write
from seqtasks.errors import SeqtasksError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file beside the target, fsyncs, then renames over it: a kill during
    the write leaves the previous checkpoint intact and no partial file under the final name."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        with atomic_write(path) as f:
            torch.save(checkpoint, f)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a seqtasks checkpoint onto the CPU, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise SeqtasksError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise SeqtasksError(f"{path}: not a readable checkpoint ({error})") from None
    if not isinstance(checkpoint, dict) or "seqtasks" not in checkpoint:
        raise SeqtasksError(f"{path}: not a seqtasks checkpoint (no 'seqtasks' entry)")
    return checkpoint
