"""Tensor helpers that every layer uses (data, encoders, heads, decoding, tasks): masks from lengths,
recurrent state mapping / selection / repetition, and the process's place under torch.distributed.

This module imports nothing from seqtasks, so anything may import it.

Recurrent state crosses module boundaries batch-first: a Tensor (B, L*D, H), or a tuple of them
((h, c) for an LSTM), or nested tuples / lists / dicts of such tensors, each with the batch as dim 0.
Only the fused kernels' call sites see the (L*D, B, H) layout (`to_layer_first` / `to_batch_first`).

A dict entry named PER_INPUT holds what every hypothesis of one input reads but never changes (an
attention decoder's encoder memory, keys and source mask). A search over G hypotheses per input
(beam search) may keep it at one row per input, G times fewer rows than the rest of the state, and
leave it in place when it reorders hypotheses: `repeat_state(..., per_input=False)`,
`select_state(..., inputs=...)`. Whoever reads it finds the G hypotheses of input b at rows
b*G .. b*G+G-1 of the rest (seqtasks/heads/attention.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor

PER_INPUT = "per_input"


def lengths_mask(lengths: Tensor, steps: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True at valid steps (the first `length` of each row)."""
    return torch.arange(steps, device=lengths.device) < lengths.to(lengths.device).unsqueeze(1)  # (B, T)


def map_state(fn: Callable[[Tensor], Tensor], state: Any, per_input: Callable[[Tensor], Tensor] | None = None) -> Any:
    """Apply fn to every tensor of a state (None, a Tensor, or nested tuples / lists / dicts);
    per_input, when given, instead of fn to the tensors under PER_INPUT entries."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, dict):
        return {
            key: map_state(per_input or fn, value) if key == PER_INPUT else map_state(fn, value, per_input)
            for key, value in state.items()
        }
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a NamedTuple keeps its type
        return type(state)(*(map_state(fn, s, per_input) for s in state))
    if isinstance(state, tuple | list):
        return type(state)(map_state(fn, s, per_input) for s in state)
    raise TypeError(f"a recurrent state holds only None, Tensors, tuples, lists and dicts; got {type(state).__name__}")


def select_state(state: Any, indices: Tensor, inputs: Tensor | None = None, per_input: bool = True) -> Any:
    """The state of batch rows `indices` (N,), in that order: every tensor's dim 0 becomes N.
    inputs: the rows to keep of PER_INPUT entries held one per input (beam search); None: indices.
    per_input=False leaves PER_INPUT entries as they are (no input left: nothing to copy)."""
    if not per_input:
        keep = lambda t: t  # noqa: E731
    else:
        keep = None if inputs is None else partial(Tensor.index_select, dim=0, index=inputs)
    return map_state(partial(Tensor.index_select, dim=0, index=indices), state, keep)


def repeat_state(state: Any, k: int, per_input: bool = True) -> Any:
    """Each batch row repeated k times in place (rows 0,0,..,1,1,..): dim 0 grows from B to B*k.
    per_input=False leaves PER_INPUT entries at one row per input."""
    return map_state(lambda t: t.repeat_interleave(k, dim=0), state, None if per_input else (lambda t: t))


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
