"""Averaging checkpoints of one model (`python -m seqtasks.average`): the elementwise mean of every
floating-point tensor of the weights, as Vaswani et al. (2017, section 6.1: the last 5 or 20
checkpoints, written at 10-minute intervals) and fairseq's scripts/average_checkpoints.py do, but
checked. The inputs must be one model: the same task, hyperparameters (constructor arguments),
tokenizers, and weight names, shapes and dtypes; integer and boolean tensors (ids, masks) must be
equal, since their mean means nothing. A mismatch fails in one line naming the first checkpoint
that differs and what differs.

Checkpoints are read with `load_checkpoint` (digests checked, nothing in them built or imported)
one at a time and summed in float64, so memory holds the sum, the first one's weights and two
checkpoints, whatever their number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqtasks.errors import ConfigError
from seqtasks.runtime.checkpoint import load_checkpoint, model_entries
from seqtasks.runtime.digest import digest

# BatchNorm's count of the batches it has seen: a step counter, not a weight (BatchNorm reads it
# only with momentum=None), which differs between checkpoints of one run; the last one's is kept.
COUNTERS = ("num_batches_tracked",)


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """The checkpoint whose weights are the mean of those of the checkpoints at `paths` (the run
    config is the last one's), in their layout, model entries only (`model_only`)."""
    reference: dict[str, Any] = {}
    sums: dict[str, torch.Tensor] = {}
    sources = []
    for path in paths:
        checkpoint = load_checkpoint(path)
        if not reference:
            reference = {key: checkpoint[key] for key in ("seqtasks", "hyper_parameters", "state_dict")}
            sums = {name: accumulated(tensor) for name, tensor in checkpoint["state_dict"].items()}
        else:
            check_same_model(paths[0], reference, path, checkpoint)
            add(sums, checkpoint["state_dict"], path, paths[0])
        sources.append(source(path, checkpoint))
    dtypes = {name: tensor.dtype for name, tensor in reference["state_dict"].items()}
    means = {
        name: (total / len(paths)).to(dtypes[name]) if total.is_floating_point() else total
        for name, total in sums.items()
    }
    return model_only(checkpoint, means, sources)


def add(sums: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], path: Path, first_path: Path) -> None:
    """Add a checkpoint's floating-point weights to the running sums; its other tensors must equal
    the first checkpoint's (counters aside, which take the latest value)."""
    for name, tensor in weights.items():
        if tensor.is_floating_point():
            sums[name] += tensor.double()
        elif name.rsplit(".", 1)[-1] in COUNTERS:
            sums[name] = tensor
        elif not torch.equal(tensor, sums[name]):
            raise ConfigError(
                f"{path}: weight '{name}' ({tensor.dtype}) differs from {first_path}'s; integer and boolean "
                "tensors are not averaged, so they must be equal"
            )


def accumulated(tensor: torch.Tensor) -> torch.Tensor:
    """A running sum's start: a float64 copy of a floating-point tensor (fp16 and bf16 weights
    summed in their own precision would lose the low bits; a copy, because tied weights share one
    storage, which summing in place would add to twice), the tensor itself otherwise."""
    return tensor.to(torch.float64, copy=True) if tensor.is_floating_point() else tensor


def source(path: Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What the averaged checkpoint records of one input (exported directories have no step)."""
    return {"checkpoint": str(path), "global_step": checkpoint.get("global_step")}


def model_only(last: dict[str, Any], weights: dict[str, torch.Tensor], sources: list[dict]) -> dict[str, Any]:
    """The averaged model in the inputs' layout: what predict, evaluate, export and init_from read.
    The optimizer's moments, the schedule, the loops' counters, the callbacks' states (best score,
    early stopping, EMA, random generators), the log's length and a language model's carried hidden
    state are dropped, not taken from the last input: they belong to one point of one run, and an
    average is at none, so a run resumed from it would continue a run that never was. Without them
    `resume=` refuses the file (seqtasks/runtime/resume.py) and `init_from.checkpoint=` starts a
    new run from it."""
    model = model_entries(last)
    model["state_dict"] = weights
    model["seqtasks"]["averaged_from"] = sources
    return model


def check_same_model(first_path: Path, first: dict[str, Any], path: Path, other: dict[str, Any]) -> None:
    """ConfigError naming `path` and what in it differs from the first checkpoint's model."""
    task, first_task = other["seqtasks"]["task"], first["seqtasks"]["task"]
    if task != first_task:
        raise mismatch(path, f"holds a '{task}' model, {first_path} a '{first_task}' one")
    hyper_parameters, first_hyper_parameters = dict(other["hyper_parameters"]), dict(first["hyper_parameters"])
    tokenizers, first_tokenizers = hyper_parameters.pop("tokenizers"), first_hyper_parameters.pop("tokenizers")
    found = first_difference(first_hyper_parameters, hyper_parameters, "hyper_parameters")
    if found:
        key, expected, actual = found
        raise mismatch(path, f"{key} is {shown(actual)}, {shown(expected)} in {first_path}")
    if sorted(tokenizers) != sorted(first_tokenizers):
        raise mismatch(path, f"has tokenizers {sorted(tokenizers)}, {first_path} {sorted(first_tokenizers)}")
    for side, state in tokenizers.items():
        if digest(state) != digest(first_tokenizers[side]):
            raise mismatch(path, f"its {side} tokenizer differs from {first_path}'s (another vocabulary or settings)")
    weights, first_weights = other["state_dict"], first["state_dict"]
    missing = [name for name in first_weights if name not in weights]
    if missing:
        raise mismatch(path, f"has no weight '{missing[0]}', which {first_path} has")
    extra = [name for name in weights if name not in first_weights]
    if extra:
        raise mismatch(path, f"has a weight '{extra[0]}', which {first_path} lacks")
    for name, tensor in weights.items():
        expected = first_weights[name]
        if tensor.shape != expected.shape or tensor.dtype != expected.dtype:
            raise mismatch(
                path,
                f"weight '{name}' is {tuple(tensor.shape)} {tensor.dtype}, "
                f"{tuple(expected.shape)} {expected.dtype} in {first_path}",
            )


def mismatch(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"{path}: not the same model as the first checkpoint: {what}; only checkpoints of one model average"
    )


ABSENT = object()


def first_difference(expected: Any, actual: Any, where: str) -> tuple[str, Any, Any] | None:
    """The first key (dotted, from `where`) at which two plain values differ, with both values
    (ABSENT where a mapping lacks it); None when they are equal. Leaves are compared by digest,
    which takes tensors, nan and the difference between 1 and 1.0 or True."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in dict.fromkeys([*expected, *actual]):
            found = first_difference(expected.get(key, ABSENT), actual.get(key, ABSENT), f"{where}.{key}")
            if found:
                return found
        return None
    if expected is ABSENT or actual is ABSENT or digest(expected) != digest(actual):
        return where, expected, actual
    return None


def shown(value: Any) -> str:
    """A value for a one-line message: absent, or its repr cut to 60 characters."""
    text = "absent" if value is ABSENT else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
