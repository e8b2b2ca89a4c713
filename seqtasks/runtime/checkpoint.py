"""Checkpoints that are safe to share: never left half-written, plain data plus tensors, loaded
with `torch.load(weights_only=True)`, and on CPU whatever trained them.

Saving turns everything Lightning and the task put into a checkpoint into plain data (dicts,
lists, strings, numbers, tensors; Lightning's AttributeDict becomes a dict), so that loading needs
no pickled class at all. A file whose pickle would build an object (and could so run code, e.g.
`os.system`) is refused, naming what it asked for. A checkpoint never imports a module either:
the components a plugin provides must be loaded by the user (`plugins=[...]`).

Saving also stores a digest of everything else in the checkpoint (`DIGEST`: a sha256 per tensor,
optimizer states included, and one over the rest, see seqtasks/runtime/digest.py); loading checks it, so a
file changed after writing fails naming the file and the tensor instead of loading other weights.
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

from seqtasks.errors import ConfigError, SeqtasksError
from seqtasks.runtime.atomic import atomic_write
from seqtasks.runtime.digest import difference, digest, warn_undigested
from seqtasks.runtime.model_dir import load_exported

PRIMITIVES = (str, int, float, bool, bytes, type(None))
DIGEST = "digest"  # the entry holding the digest of all the others
# What of a checkpoint describes its model (what predict, evaluate, serve, export, average and
# init_from read); the rest is the state of one point of one run (optimizer moments, schedule,
# loops, callbacks, the log's length), which only a resume reads.
MODEL_ENTRIES = ("pytorch-lightning_version", "hparams_name", "hyper_parameters", "state_dict")
MODEL_RECORD = ("task", "config")  # of the "seqtasks" entry (a language model's carried state is run state)


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
        write_checkpoint(checkpoint, path)

    def load_checkpoint(self, path: _PATH, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return read_checkpoint(Path(path))


def write_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Save a checkpoint as plain data with its digest, atomically: what training and
    `seqtasks.average` write."""
    with atomic_write(path) as f:
        torch.save(sealed(plain(checkpoint)), f)


def model_entries(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The entries of a checkpoint that describe its model (`MODEL_ENTRIES`, `MODEL_RECORD`)."""
    model = {key: checkpoint[key] for key in MODEL_ENTRIES if key in checkpoint}
    model["seqtasks"] = {key: checkpoint["seqtasks"][key] for key in MODEL_RECORD if key in checkpoint["seqtasks"]}
    return model


def keep_model_only(path: Path) -> None:
    """Rewrite the checkpoint at `path` with its model only, and the epoch and step it was taken at:
    a run's best.ckpt, once the run is over, is a model to use, not a point to resume from (that is
    last.ckpt). Adam's two moments and, with `ema.decay`, the current weights beside the average
    made it three to four times the size of its weights."""
    checkpoint = load_checkpoint(path)
    step = {key: checkpoint[key] for key in ("epoch", "global_step") if key in checkpoint}
    write_checkpoint({**model_entries(checkpoint), **step}, path)


def sealed(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """checkpoint (plain data) with the digest of its other entries; one it already had (a loaded
    checkpoint saved again) is replaced."""
    body = {key: value for key, value in checkpoint.items() if key != DIGEST}
    return {**body, DIGEST: digest(body)}


def unsealed(path: Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """checkpoint without its digest entry, once the rest is found to match it."""
    if DIGEST not in checkpoint:
        # Files from before digests load unchecked; but a changed byte in the pickle can also rename
        # the digest's own key, and its archive record's CRC is then what tells the two apart.
        damage = crc_failure(path)
        if damage:
            raise damage
        warn_undigested(path)
        return checkpoint
    stored = checkpoint.pop(DIGEST)
    problem = difference(stored, digest(checkpoint))
    if problem:
        raise SeqtasksError(f"{path}: corrupt checkpoint: {problem} (the file changed after it was saved)")
    return checkpoint


def crc_failure(path: Path) -> SeqtasksError | None:
    """The error naming the first entry of a checkpoint's zip archive whose bytes fail their CRC
    (torch.load checks none), or None when every entry passes."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError):
        return None
    if damaged is None:
        return None
    return SeqtasksError(
        f"{path}: corrupt checkpoint: {damaged} fails its CRC check (the file changed after it was saved)"
    )


def unreadable(path: Path, error: Exception) -> SeqtasksError:
    """What is wrong with a checkpoint torch.load failed on. Damage is looked for first: a damaged
    pickle can fail in any way, asking for a Python object among them."""
    damage = crc_failure(path)
    if damage:
        return damage
    if isinstance(error, pickle.UnpicklingError):
        detail = str(error).split("\n")
        asked = next((line.strip() for line in detail if "GLOBAL" in line or "Unsupported" in line), detail[0])
        return SeqtasksError(
            f"{path}: refused: this file's pickle would build Python objects, which could run code "
            f"on loading ({asked}); seqtasks checkpoints hold only tensors and plain data"
        )
    first = str(error).strip().split("\n")[0]
    return SeqtasksError(f"{path}: not a readable checkpoint (truncated or corrupt? {first})")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """torch.load(weights_only=True) of a seqtasks checkpoint, its digest checked, with an error that
    says what is wrong with the file."""
    if not path.is_file():
        raise SeqtasksError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its index is at the end
        raise SeqtasksError(
            f"{path}: not a readable checkpoint (not a complete PyTorch archive: truncated or corrupt?)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a refused pickle, zip reader errors, OSError, EOFError, ...
        raise unreadable(path, error) from None
    if not isinstance(checkpoint, dict) or "seqtasks" not in checkpoint:
        raise SeqtasksError(f"{path}: not a seqtasks checkpoint (no 'seqtasks' entry)")
    return unsealed(path, checkpoint)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a seqtasks checkpoint (or a model directory written by `seqtasks.export`) onto the CPU,
    with a clear error for anything else."""
    path = Path(path)
    checkpoint = load_exported(path) if path.is_dir() else read_checkpoint(path)
    check_layout(path, checkpoint)
    return checkpoint


# The entries seqtasks reads from a checkpoint, and what each must be.
LAYOUT: dict[tuple[str, ...], tuple[type, ...]] = {
    ("seqtasks",): (dict,),
    ("seqtasks", "task"): (str,),
    ("seqtasks", "config"): (dict, type(None)),
    ("hyper_parameters",): (dict,),
    ("hyper_parameters", "tokenizers"): (dict,),
    ("state_dict",): (dict,),
}
KIND_NAMES = {dict: "mapping", str: "string", type(None): "null"}


def check_layout(path: Path, checkpoint: dict[str, Any]) -> None:
    """A checkpoint is data that may come from anyone: an entry seqtasks reads that is missing or of
    the wrong kind fails here, in one line naming it, rather than deep inside a command."""
    for keys, kinds in LAYOUT.items():
        node: Any = checkpoint
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, kinds):  # a missing entry is None here, which only the run config may be
            name = "".join(f"[{key!r}]" for key in keys)
            expected = " or ".join(KIND_NAMES[kind] for kind in kinds)
            raise SeqtasksError(f"{path}: not a seqtasks checkpoint: {name} is missing or not a {expected}")
    weights = checkpoint["state_dict"].items()
    if not all(isinstance(name, str) and isinstance(tensor, torch.Tensor) for name, tensor in weights):
        raise SeqtasksError(f"{path}: not a seqtasks checkpoint: ['state_dict'] must map names to tensors")


def recorded_data_config(origin: str, run_config: Any) -> dict[str, Any]:
    """The data section of the run config a checkpoint recorded (read from a file, maybe someone
    else's: checked to be a mapping with a dataset name), for the commands that rebuild a model's
    data (evaluate's test split, shortlist's training pairs)."""
    data = run_config.get("data") if isinstance(run_config, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(f"{origin}: the checkpoint carries no run config with a dataset to rebuild its data from")
    return dict(data)
