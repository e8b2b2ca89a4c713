"""Tensor helpers that every layer uses (data, encoders, heads, decoding, tasks): masks from lengths,
recurrent state mapping / selection / repetition, and the process's place under torch.distributed.

This module imports nothing from seqtasks, so anything may import it.

Recurrent state crosses module boundaries batch-first: a Tensor (B, L*D, H), or a tuple of them
((h, c) for an LSTM), or nested tuples / lists / dicts of such tensors, each with the batch as dim 0.
Only the fused kernels' call sites see the (L*D, B, H) layout (`to_layer_first` / `to_batch_first`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def lengths_mask(lengths: Tensor, steps: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True at valid steps (the first `length` of each row)."""
    return torch.arange(steps, device=lengths.device) < lengths.to(lengths.device).unsqueeze(1)  # (B, T)


def map_state(fn: Callable[[Tensor], Tensor], state: Any) -> Any:
    """Apply fn to every tensor of a state (None, a Tensor, or nested tuples / lists / dicts)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, dict):
        return {key: map_state(fn, value) for key, value in state.items()}
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a NamedTuple keeps its type
        return type(state)(*(map_state(fn, s) for s in state))
    if isinstance(state, tuple | list):
        return type(state)(map_state(fn, s) for s in state)
    raise TypeError(f"a recurrent state holds only None, Tensors, tuples, lists and dicts; got {type(state).__name__}")


def select_state(state: Any, indices: Tensor) -> Any:
    """The state of batch rows `indices` (N,), in that order: every tensor's dim 0 becomes N."""
    return map_state(lambda t: t.index_select(0, indices), state)


def repeat_state(state: Any, k: int) -> Any:
    """Each batch row repeated k times in place (rows 0,0,..,1,1,..): dim 0 grows from B to B*k."""
    return map_state(lambda t: t.repeat_interleave(k, dim=0), state)


def detach_state(state: Any) -> Any:
    """The same values, cut from the autograd graph (truncated backpropagation through time)."""
    return map_state(Tensor.detach, state)


def to_layer_first(state: Any) -> Any:
    """Batch-first state (B, L*D, H) per tensor -> the fused kernels' (L*D, B, H), contiguous."""
    return map_state(lambda t: t.transpose(0, 1).contiguous(), state)


def to_batch_first(state: Any) -> Any:
    """The fused kernels' (L*D, B, H) per tensor -> batch-first (B, L*D, H)."""
    return map_state(lambda t: t.transpose(0, 1), state)


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process under torch.distributed, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def gather_by_key(records: dict[Any, Any]) -> dict[Any, Any]:
    """Every rank's records in one dict (each rank gets the same). Keys name examples, so an example
    that several ranks saw (DDP pads the ranks' batch lists to equal length) counts once."""
    _, world = rank_and_world()
    if world == 1:
        return dict(records)
    parts: list[dict | None] = [None] * world
    torch.distributed.all_gather_object(parts, records)
    merged: dict[Any, Any] = {}
    for part in parts:
        merged.update(part)
    return merged
