"""Decoding sees only a step function, so any model that exposes one can use any strategy:

    step(prev_tokens (B,), state) -> (log_probs (B, V), state)

Greedy and sampling choose one token per row per step (`TokenByToken`); beam search keeps
several hypotheses per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

StepFunction = Callable[[Tensor, Any], tuple[Tensor, Any]]


class DecodingStrategy:
    """Base class of the `decoding` registry."""

    def decode(
        self,
        step: StepFunction,
        state: Any,
        first_tokens: Tensor,
        max_len: int,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Generate up to max_len tokens after first_tokens (B,) -> (B, max_len); rows that emitted
        eos_id are padded with eos_id afterwards."""
        raise NotImplementedError


class TokenByToken(DecodingStrategy):
    """Strategies that pick one next token per row from the step's distribution."""

    def choose(self, log_probs: Tensor, generator: torch.Generator | None) -> Tensor:
        """(B, V) log-probabilities -> (B,) token ids."""
        raise NotImplementedError

    def decode(self, step, state, first_tokens, max_len, eos_id=None, generator=None):
        tokens, chosen = first_tokens, []
        finished = torch.zeros_like(first_tokens, dtype=torch.bool)
        for _ in range(max_len):
            log_probs, state = step(tokens, state)  # (B, V)
            tokens = self.choose(log_probs, generator)  # (B,)
            if eos_id is not None:
                tokens = tokens.masked_fill(finished, eos_id)
                finished |= tokens == eos_id
            chosen.append(tokens)
            if eos_id is not None and bool(finished.all()):
                break
        return torch.stack(chosen, dim=1)  # (B, steps)
