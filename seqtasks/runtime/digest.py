"""Digests that show a saved model is still the model that was saved. Checkpoints and exported model
directories store them when written and are checked against them when read, so that bytes changed
afterwards (a failing disk, a bad copy, a hand edit) fail the load, naming the file, instead of
loading as other weights: neither torch.load nor safetensors checks the bytes of a tensor.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

ALGORITHM = "sha256"


def digest(value: Any) -> dict[str, Any]:
    """The digest of plain data (dicts, lists, tuples, primitives, tensors):
    {"algorithm": "sha256", "tensors": {path: sha256 of its dtype, shape and bytes}, "data": sha256
    of everything, tensors aside}, paths written like checkpoint['state_dict']['encoder.weight']."""
    tensors: dict[str, str] = {}
    lines: list[str] = []
    _add(value, "checkpoint", tensors, lines)
    data = hashlib.sha256("".join(lines).encode()).hexdigest()
    return {"algorithm": ALGORITHM, "tensors": tensors, "data": data}


def _add(value: Any, where: str, tensors: dict[str, str], lines: list[str]) -> None:
    # Each node adds its path and kind, so that a renamed key, a list become a tuple or an emptied
    # container changes the digest as surely as a changed value does.
    if isinstance(value, torch.Tensor):
        lines.append(f"{where}\0tensor\n")
        tensors[where] = tensor_sha256(value)
    elif isinstance(value, dict):
        lines.append(f"{where}\0dict\0{len(value)}\n")
        for key, item in value.items():
            _add(item, f"{where}[{key!r}]", tensors, lines)
    elif isinstance(value, list | tuple):
        lines.append(f"{where}\0{type(value).__name__}\0{len(value)}\n")
        for i, item in enumerate(value):
            _add(item, f"{where}[{i}]", tensors, lines)
    else:  # repr is exact for str, bytes, int, bool, None and float (nan and inf too)
        lines.append(f"{where}\0{type(value).__name__}\0{value!r}\n")


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and element bytes (not its storage's layout, which loading
    may change, e.g. a tied weight exported as a copy of its own)."""
    elements = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    sha = hashlib.sha256(f"{tensor.dtype}\0{tuple(tensor.shape)}\n".encode())
    sha.update(elements.numpy())
    return sha.hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, ALGORITHM).hexdigest()


def difference(stored: Any, actual: dict[str, Any]) -> str | None:
    """What in `actual` (a digest()) differs from the digest stored with it, in words; None when
    nothing does. The first differing tensor is named, in the order they were saved."""
    if stored == actual:
        return None
    saved = stored.get("tensors") if isinstance(stored, dict) else None
    if not isinstance(saved, dict) or stored.get("algorithm") != ALGORITHM:
        return f"its digest entry is damaged (or of an algorithm other than {ALGORITHM}, unknown to this version)"
    changed = [path for path in saved if saved[path] != actual["tensors"].get(path)]
    changed += [path for path in actual["tensors"] if path not in saved]
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        return f"tensor {changed[0]}{more} differs from the digest stored with it"
    return "its data other than tensors differs from the digest stored with it"


_warned: set[str] = set()


def warn_undigested(path: Path) -> None:
    """Files saved before digests existed still load, unchecked: one warning per file and process
    (a resumed run reads its checkpoint twice)."""
    if str(path) not in _warned:
        _warned.add(str(path))
        log.warning("%s: saved without a digest (by an older seqtasks): loaded without checking it for damage", path)
