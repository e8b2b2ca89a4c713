"""Classifier-free guidance for a decoder trained both with and without its input (Ho & Salimans
2022, https://arxiv.org/abs/2207.12598; for language models Sanchez et al. 2023,
https://arxiv.org/abs/2306.17806): each step runs the decoder twice, on the input and on none, and
extrapolates from the prior towards the input,

    log p  =  log_softmax( prior + weight * (conditional - prior) ),

so a word the input supports but the training captions made unlikely (the shape after a colour
that training never paired with it) is not voted down by that prior. weight 1 is the conditional
model alone, 0 the prior alone. It wraps a step function, so every strategy (greedy, beam,
sampling) can use it; the state is the two branches' states in a dict, batch-first as the
strategies need.

Extrapolating a ratio also lifts tokens that both models find unlikely: a token with probability
0.01 on the input and 0.0001 on none gets 2 * log 0.01 - log 0.0001 = 0 at weight 2, as likely as
anything (a name that ends after "Ch"). `plausibility` = a keeps only the tokens whose conditional
probability is at least a times that of the conditional's most likely token (the adaptive
plausibility constraint of contrastive decoding, Li et al. 2023, https://arxiv.org/abs/2210.15097);
0 keeps every token the conditional model may emit.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from seqtasks.decoding.base import StepFunction
from seqtasks.errors import ConfigError


def checked_weight(weight: float, key: str, no_prior: str | None) -> float:
    """weight, if a model can be guided by it: >= 0, and 1 unless it learned a prior (no_prior:
    None, else what it lacks and how to train it) -> else a ConfigError naming `key`."""
    if weight < 0:
        raise ConfigError(f"{key}={weight}: a guidance weight is >= 0 (1: the input alone, 0: the prior alone)")
    if weight != 1.0 and no_prior is not None:
        raise ConfigError(f"{key}={weight} {no_prior}, or set {key}=1")
    return weight


class GuidedStep:
    """step(prev, {"input": s, "none": s0}) of a decoder run on its input and on none, combined."""

    def __init__(self, step: StepFunction, weight: float, plausibility: float = 0.0):
        self.step, self.weight, self.plausibility = step, weight, plausibility

    def __call__(self, prev_tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        conditional, given = self.step(prev_tokens, state["input"])  # (N, V) log-probabilities
        prior, alone = self.step(prev_tokens, state["none"])  # (N, V)
        guided = prior + self.weight * (conditional - prior)  # (N, V)
        # A token the conditional model never emits stays never emitted (-inf in both would give NaN).
        implausible = conditional.isneginf()  # (N, V)
        if self.plausibility > 0:
            floor = conditional.max(dim=-1, keepdim=True).values + math.log(self.plausibility)  # (N, 1)
            implausible |= conditional < floor
        guided = guided.masked_fill(implausible, float("-inf"))
        return guided.log_softmax(dim=-1), {"input": given, "none": alone}
