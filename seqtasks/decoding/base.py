"""Decoding sees only a step function, so any model that exposes one can use any strategy:

    step(prev_tokens (B,), state) -> (log_probs (B, V), state)

`state` is the model's business, with one rule: it is None, a Tensor, or a nested tuple / list /
dict of Tensors, each with the batch as dim 0. That rule is what lets a strategy reorder or
expand the batch without knowing the model (`seqtasks.tensors.select_state` / `repeat_state`);
beam search needs it.

Every strategy returns n-best lists through one interface, `search(...) -> (tokens (B, N, T),
scores (B, N))`, N = `n_best` hypotheses per row, best first: beam search's N best, or N
independent draws of a token-by-token strategy (greedy's N are equal), each scored by the sum of
its log-probabilities. `decode(...)` is the best hypothesis alone, (B, T).

`max_len` is an int, or a LongTensor (B,) of per-row limits (translation allows each sentence a
multiple of its source length); a row that reaches its limit is finished, and eos_id fills it
from there on, so per-row limits need an eos_id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from seqtasks.configuration.registry import DECODING
from seqtasks.configuration.validation import PositiveInt
from seqtasks.tensors import repeat_state

StepFunction = Callable[[Tensor, Any], tuple[Tensor, Any]]


def row_limits(max_len: int | Tensor, eos_id: int | None) -> tuple[int, Tensor | None]:
    """(the most steps any row may take, per-row limits (B,) or None when max_len is an int)."""
    if not isinstance(max_len, Tensor):
        return int(max_len), None
    if eos_id is None:
        raise ValueError("per-row max_len needs an eos_id: rows past their limit are filled with eos")
    return (int(max_len.max()) if max_len.numel() else 0), max_len


@DECODING.base_class
class DecodingStrategy:
    """Base class of the `decoding` registry."""

    def __init__(self, n_best: PositiveInt = 1):
        self.n_best = n_best

    def search(
        self,
        step: StepFunction,
        state: Any,
        first_tokens: Tensor,
        max_len: int | Tensor,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
        n: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """n (default n_best) hypotheses per row after first_tokens (B,), best first -> tokens
        (B, N, T) and scores (B, N). T is the number of steps taken, at most max_len (or its largest
        row); after a hypothesis's eos, or past its row's limit, it holds eos_id."""
        raise NotImplementedError

    def decode(
        self,
        step: StepFunction,
        state: Any,
        first_tokens: Tensor,
        max_len: int | Tensor,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The best hypothesis of each row: (B, T)."""
        return self.search(step, state, first_tokens, max_len, eos_id, generator, n=1)[0][:, 0]


class TokenByToken(DecodingStrategy):
    """Strategies that pick one next token per row from the step's distribution."""

    def choose(self, log_probs: Tensor, generator: torch.Generator | None) -> Tensor:
        """(B, V) log-probabilities -> (B,) token ids."""
        raise NotImplementedError

    def search(self, step, state, first_tokens, max_len, eos_id=None, generator=None, n=None):
        n = n or self.n_best
        batch = first_tokens.shape[0]
        if n > 1:  # n draws per row as n*B rows: row b's draws are rows b*n .. b*n+n-1
            state, first_tokens = repeat_state(state, n), first_tokens.repeat_interleave(n)
            if isinstance(max_len, Tensor):
                max_len = max_len.repeat_interleave(n)
        steps, limits = row_limits(max_len, eos_id)
        tokens, chosen = first_tokens, []
        scores = torch.zeros(first_tokens.shape, dtype=torch.float, device=first_tokens.device)  # (N*B,)
        finished = torch.zeros_like(first_tokens, dtype=torch.bool)  # (N*B,)
        if limits is not None:
            finished |= limits.to(finished.device) <= 0  # a row allowed no token at all
        for t in range(steps):
            if eos_id is not None and bool(finished.all()):
                break
            log_probs, state = step(tokens, state)  # (N*B, V)
            tokens = self.choose(log_probs, generator)  # (N*B,)
            picked = log_probs.float().gather(1, tokens[:, None]).squeeze(1)  # (N*B,)
            scores += picked.masked_fill(finished, 0.0)
            if eos_id is not None:
                tokens = tokens.masked_fill(finished, eos_id)
                finished |= tokens == eos_id
            if limits is not None:
                finished |= limits.to(finished.device) <= t + 1  # that was the row's last token
            chosen.append(tokens)
        out = torch.stack(chosen, dim=1) if chosen else first_tokens.new_empty((first_tokens.shape[0], 0))
        out, scores = out.view(batch, n, out.shape[1]), scores.view(batch, n)  # (B, N, T), (B, N)
        scores, order = scores.sort(dim=1, descending=True, stable=True)
        return out.gather(1, order[..., None].expand_as(out)), scores
