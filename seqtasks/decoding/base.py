"""Decoding sees only a step function, so any model that exposes one can use any strategy:

    step(prev_tokens (B,), state) -> (log_probs (B, V), state)

`state` is the model's business, with one rule: it is None, a Tensor, or a nested tuple / list /
dict of Tensors, each with the batch as dim 0. That rule is what lets a strategy reorder or
expand the batch without knowing the model (`select_state`, `repeat_state`); beam search needs it.
A recurrent model whose kernels want another layout converts at its step function's boundary
(`seqtasks.encoders.rnn.to_batch_first` / `to_layer_first`).

`max_len` is an int, or a LongTensor (B,) of per-row limits (translation allows each sentence a
multiple of its source length); a row that reaches its limit is finished, and eos_id fills it
from there on, so per-row limits need an eos_id.

Greedy and sampling choose one token per row per step (`TokenByToken`); beam search keeps
several hypotheses per row (`beam.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

StepFunction = Callable[[Tensor, Any], tuple[Tensor, Any]]


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
    raise TypeError(f"a decoding state holds only None, Tensors, tuples, lists and dicts; got {type(state).__name__}")


def select_state(state: Any, indices: Tensor) -> Any:
    """The state of batch rows `indices` (N,), in that order: every tensor's dim 0 becomes N."""
    return map_state(lambda t: t.index_select(0, indices), state)


def repeat_state(state: Any, k: int) -> Any:
    """Each batch row repeated k times in place (rows 0,0,..,1,1,..): dim 0 grows from B to B*k."""
    return map_state(lambda t: t.repeat_interleave(k, dim=0), state)


def row_limits(max_len: int | Tensor, eos_id: int | None) -> tuple[int, Tensor | None]:
    """(the most steps any row may take, per-row limits (B,) or None when max_len is an int)."""
    if not isinstance(max_len, Tensor):
        return int(max_len), None
    if eos_id is None:
        raise ValueError("per-row max_len needs an eos_id: rows past their limit are filled with eos")
    return (int(max_len.max()) if max_len.numel() else 0), max_len


class DecodingStrategy:
    """Base class of the `decoding` registry."""

    def decode(
        self,
        step: StepFunction,
        state: Any,
        first_tokens: Tensor,
        max_len: int | Tensor,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Generate tokens after first_tokens (B,) -> (B, T): T is the number of steps taken, at most
        max_len (or its largest row); after a row's eos, or past its own limit, it holds eos_id."""
        raise NotImplementedError


class TokenByToken(DecodingStrategy):
    """Strategies that pick one next token per row from the step's distribution."""

    def choose(self, log_probs: Tensor, generator: torch.Generator | None) -> Tensor:
        """(B, V) log-probabilities -> (B,) token ids."""
        raise NotImplementedError

    def decode(self, step, state, first_tokens, max_len, eos_id=None, generator=None):
        steps, limits = row_limits(max_len, eos_id)
        tokens, chosen = first_tokens, []
        finished = torch.zeros_like(first_tokens, dtype=torch.bool)  # (B,)
        if limits is not None:
            finished |= limits.to(finished.device) <= 0  # a row allowed no token at all
        for t in range(steps):
            if eos_id is not None and bool(finished.all()):
                break
            log_probs, state = step(tokens, state)  # (B, V)
            tokens = self.choose(log_probs, generator)  # (B,)
            if eos_id is not None:
                tokens = tokens.masked_fill(finished, eos_id)
                finished |= tokens == eos_id
            if limits is not None:
                finished |= limits.to(finished.device) <= t + 1  # that was the row's last token
            chosen.append(tokens)
        if not chosen:
            return first_tokens.new_empty((first_tokens.shape[0], 0))
        return torch.stack(chosen, dim=1)  # (B, steps)
