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

Finished rows leave the batch that `step` sees (`select_state`), so later steps compute only the
rows still decoding: `step` must treat rows independently, whatever the batch holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from seqtasks.configuration.registry import DECODING
from seqtasks.configuration.validation import PositiveInt
from seqtasks.tensors import repeat_state, select_state

StepFunction = Callable[[Tensor, Any], tuple[Tensor, Any]]


def row_limits(max_len: int | Tensor, eos_id: int | None) -> tuple[int, Tensor | None]:
    """(the most steps any row may take, per-row limits (B,) or None when max_len is an int)."""
    if not isinstance(max_len, Tensor):
        return int(max_len), None
    if eos_id is None:
        raise ValueError("per-row max_len needs an eos_id: rows past their limit are filled with eos")
    return (int(max_len.max()) if max_len.numel() else 0), max_len


def eos_filled(like: Tensor, shape: tuple[int, ...], eos_id: int | None) -> Tensor:
    """A token buffer of `shape` that rows write while they decode: eos stays after a row finished.
    Without an eos_id no row finishes before the last step, so every entry is written."""
    return like.new_full(shape, 0 if eos_id is None else eos_id)


@DECODING.base_class
class DecodingStrategy:
    """Base class of the `decoding` registry."""

    def __init__(self, n_best: PositiveInt = 1):
        self.n_best = n_best

    @property
    def draws_at_random(self) -> bool:
        """Whether the output depends on random draws (and so on which rows share a call), not on
        the input alone. A strategy that says False may decode the requests of different clients in
        one batch (seqtasks.serve); unless it says so, it is taken to draw."""
        return True

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
        rows, device = first_tokens.shape[0], first_tokens.device
        out = eos_filled(first_tokens, (rows, steps), eos_id)  # (N*B, most steps)
        scores = torch.zeros(rows, dtype=torch.float, device=device)  # (N*B,)
        finished = torch.zeros(rows, dtype=torch.bool, device=device)  # (N*B,)
        if limits is not None:
            limits = limits.to(device)
            finished |= limits <= 0  # a row allowed no token at all
        # step sees the rows `live` (L,) of the N*B, in order; tokens and state are theirs.
        live, tokens, taken = torch.arange(rows, device=device), first_tokens, 0
        for t in range(steps):
            done = finished[live]  # (L,)
            leaving = int(done.sum())
            if eos_id is not None and leaving == len(done):  # every row has finished
                break
            # Dropping rows copies the state of those that stay (attention memory included), so rows
            # leave together, once they are a quarter of the batch: then at most a quarter of a step's
            # rows is wasted, and as each drop shrinks the batch by a quarter or more, all drops
            # together copy less than 3 times the starting state (3/4 + (3/4)^2 + ... = 3).
            # Sampling draws a random number per row of the batch, so a smaller batch changes which
            # draws a row gets: a seed still fixes the result, but not that of a search that kept them.
            if leaving and 4 * leaving >= len(done):
                stay = (~done).nonzero().squeeze(1)  # (L',)
                live, tokens, state, done = live[stay], tokens[stay], select_state(state, stay), done[stay]
            log_probs, state = step(tokens, state)  # (L, V)
            tokens = self.choose(log_probs, generator)  # (L,)
            picked = log_probs.float().gather(1, tokens[:, None]).squeeze(1)  # (L,)
            scores[live] += picked.masked_fill(done, 0.0)
            if eos_id is not None:
                tokens = tokens.masked_fill(done, eos_id)
                finished[live] |= tokens == eos_id
            if limits is not None:
                finished |= limits <= t + 1  # that was the row's last token
            out[live, t] = tokens
            taken = t + 1
        out, scores = out.view(batch, n, steps)[..., :taken], scores.view(batch, n)  # (B, N, T), (B, N)
        scores, order = scores.sort(dim=1, descending=True, stable=True)
        return out.gather(1, order[..., None].expand_as(out)), scores
