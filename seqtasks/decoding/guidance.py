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
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from seqtasks.decoding.base import StepFunction


class GuidedStep:
    """step(prev, {"input": s, "none": s0}) of a decoder run on its input and on none, combined."""

    def __init__(self, step: StepFunction, weight: float):
        self.step, self.weight = step, weight

    def __call__(self, prev_tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        conditional, given = self.step(prev_tokens, state["input"])  # (N, V) log-probabilities
        prior, alone = self.step(prev_tokens, state["none"])  # (N, V)
        guided = prior + self.weight * (conditional - prior)  # (N, V)
        return guided.log_softmax(dim=-1), {"input": given, "none": alone}
