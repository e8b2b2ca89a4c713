from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from seqtasks.configuration.registry import DECODING
from seqtasks.configuration.validation import NonNegativeFloat, PositiveInt, Range
from seqtasks.decoding.base import TokenByToken
from seqtasks.decoding.candidates import first_argmax

NucleusMass = Annotated[float, Range(low=0, high=1, low_open=True)]  # top_p: in (0, 1]


def filter_top_k(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits per row, -inf elsewhere. (B, V) -> (B, V)."""
    kth = logits.topk(min(k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering (Holtzman et al. 2020): keep the smallest set of tokens whose probability
    reaches p; the most probable token always stays. (B, V) -> (B, V)."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    # Drop a token when the tokens before it already reach p.
    drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


@DECODING.register("sampling")
class Sampling(TokenByToken):
    """Random sampling with temperature, optionally restricted to the top-k or top-p tokens."""

    def __init__(
        self,
        temperature: NonNegativeFloat = 1.0,
        top_k: PositiveInt | None = None,
        top_p: NucleusMass | None = None,
        n_best: PositiveInt = 1,
    ):
        super().__init__(n_best)
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p

    @property
    def draws_at_random(self) -> bool:
        return self.temperature != 0  # at 0 it takes the most probable token, as greedy does

    def choose(self, log_probs, generator=None):
        if self.temperature == 0:  # the limit of temperature -> 0 is the argmax
            return first_argmax(log_probs)
        logits = log_probs.float() / self.temperature
        if self.top_k is not None:
            logits = filter_top_k(logits, self.top_k)
        if self.top_p is not None:
            logits = filter_top_p(logits, self.top_p)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)  # (B,)
