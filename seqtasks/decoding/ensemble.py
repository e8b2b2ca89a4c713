"""Ensembles at decode time: several models' distributions averaged into one, which every strategy
(greedy, beam, sampling) searches as if it were one model's,

    p(y) = 1/M sum_m p_m(y),    log p(y) = logsumexp_m log p_m(y) - log M.

The mean of the probabilities, not of the log-probabilities: a token one member rules out stays
possible when the others like it (fairseq's EnsembleModel averages NMT systems the same way). The
state of an averaged step is the tuple of the members' states, each batch-first, so beam search
repeats and reorders all of them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from seqtasks.decoding.base import StepFunction


def log_mean_prob(log_probs: Sequence[Tensor]) -> Tensor:
    """M log-probability tensors (..., V) of one shape -> the log of their mean probability (..., V), float32.

    Computed as top + log mean exp(log p_m - top), top the members' largest: stable like logsumexp,
    and exact where the members agree (exp(0) = 1), so a model ensembled with itself decodes as it
    does alone, ties and all, which logsumexp - log M would round differently."""
    stacked = torch.stack([log_prob.float() for log_prob in log_probs])  # (M, ..., V)
    top = stacked.amax(dim=0)  # (..., V)
    top = top.masked_fill(top.isinf(), 0.0)  # a token every member rules out stays -inf, not nan
    return top + (stacked - top).exp().mean(dim=0).log()


class AveragedStep:
    """step(prev, (s_1, ..., s_M)) of M members' steps: the log of their mean next-token
    probabilities, and every member's state advanced."""

    def __init__(self, steps: Sequence[StepFunction]):
        self.steps = list(steps)

    def __call__(self, prev_tokens: Tensor, states: tuple[Any, ...]) -> tuple[Tensor, tuple[Any, ...]]:
        outputs = [step(prev_tokens, state) for step, state in zip(self.steps, states, strict=True)]
        log_probs, states = zip(*outputs, strict=True)  # M of (N, V), M states
        return log_mean_prob(log_probs), tuple(states)
