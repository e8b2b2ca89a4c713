"""One vector per sequence from an encoder's states, for sequence classification heads.

Methods (padding never changes a result; every sequence needs at least one step):

- `last`: the final recurrent state. For a bidirectional encoder (features = [forward | backward])
  the forward direction ends at the last valid step and the backward direction at step 0, so
  `last` takes states[b, length-1, :H/2] and states[b, 0, H/2:].
- `mean`: average over valid steps.
- `max`: element-wise max over valid steps (Collobert et al. 2011; Conneau et al. 2017 found it the
  best of these for sentence encoders).
- `attention`: a learned score per step, softmax over valid steps, weighted sum of the states
  (Bahdanau et al. 2015; the tanh-layer scorer is the word attention of Yang et al. 2016,
  "Hierarchical Attention Networks for Document Classification").

Shapes: B batch, T steps, H features (all directions together), D directions.
"""

from __future__ import annotations

import typing
from typing import Literal

import torch
from torch import Tensor, nn

from seqtasks.errors import ConfigError
from seqtasks.tensors import lengths_mask

PoolingMethod = Literal["last", "mean", "max", "attention"]
POOLING_METHODS = typing.get_args(PoolingMethod)


def pool_last(states: Tensor, lengths: Tensor, num_directions: int = 1) -> Tensor:
    """Final state of each direction: (B, T, H), (B,) -> (B, H)."""
    B, T, H = states.shape
    per_direction = H // num_directions
    rows = torch.arange(B, device=states.device)  # (B,)
    forward = states[rows, lengths - 1, :per_direction]  # (B, H/D) forward direction ends at length-1
    if num_directions == 1:
        return forward
    backward = states[:, 0, per_direction:]  # (B, H/D) backward direction ends at step 0
    return torch.cat([forward, backward], dim=1)  # (B, H)


def pool_mean(states: Tensor, lengths: Tensor) -> Tensor:
    """Mean over valid steps: (B, T, H), (B,) -> (B, H)."""
    mask = lengths_mask(lengths, states.shape[1]).unsqueeze(2)  # (B, T, 1)
    total = states.masked_fill(~mask, 0.0).sum(dim=1)  # (B, H)
    return total / lengths.unsqueeze(1).to(states.dtype)  # (B, H)


def pool_max(states: Tensor, lengths: Tensor) -> Tensor:
    """Element-wise max over valid steps: (B, T, H), (B,) -> (B, H)."""
    mask = lengths_mask(lengths, states.shape[1]).unsqueeze(2)  # (B, T, 1)
    # -inf, not 0: padding must never win, even over valid states that are all negative.
    return states.masked_fill(~mask, float("-inf")).amax(dim=1)  # (B, H)


class SequencePooling(nn.Module):
    """Pool encoder states (B, T, H) with lengths (B,) into (B, H): last, mean, max or attention.

    input_size: H, the encoder's output size (all directions together).
    method: one of last, mean, max, attention.
    num_directions: 1, or 2 for a bidirectional encoder (only `last` depends on it).
    attention_size: for `attention`, 0 scores each step with one learned vector (w . h_t);
        > 0 puts a tanh layer of that size first (v . tanh(W h_t + b), Yang et al. 2016).

    After a forward pass with `attention`, `attention_weights` holds the weights (B, T), detached:
    they sum to 1 over each sequence's valid steps and are exactly 0 on padding.
    """

    def __init__(self, input_size: int, method: str = "last", num_directions: int = 1, attention_size: int = 0):
        super().__init__()
        if method not in POOLING_METHODS:
            raise ConfigError(f"unknown pooling method '{method}'; choose from: {', '.join(POOLING_METHODS)}")
        if num_directions not in (1, 2):
            raise ConfigError(f"pooling num_directions must be 1 or 2, got {num_directions}")
        if input_size % num_directions:
            raise ConfigError(f"pooling input_size={input_size} does not split into {num_directions} directions")
        if attention_size < 0:
            raise ConfigError(f"pooling attention_size must be >= 0, got {attention_size}")
        self.input_size = input_size
        self.method = method
        self.num_directions = num_directions
        self.attention_weights: Tensor | None = None
        self.scorer: nn.Module | None = None
        if method == "attention":
            # No bias on the last layer: softmax ignores a score added to every step.
            self.scorer = (
                nn.Linear(input_size, 1, bias=False)
                if attention_size == 0
                else nn.Sequential(
                    nn.Linear(input_size, attention_size), nn.Tanh(), nn.Linear(attention_size, 1, bias=False)
                )
            )

    @property
    def output_size(self) -> int:
        return self.input_size

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, method={self.method}, num_directions={self.num_directions}"

    def forward(self, states: Tensor, lengths: Tensor) -> Tensor:  # (B, T, H), (B,) -> (B, H)
        B, T, H = states.shape
        if H != self.input_size:
            raise ValueError(f"pooling expects {self.input_size} features, got states of shape {tuple(states.shape)}")
        if lengths.shape != (B,):
            raise ValueError(f"lengths must be (B,) = ({B},), got {tuple(lengths.shape)}")
        lengths = lengths.to(states.device)  # the encoder may have moved them to the CPU for packing
        if not bool(((lengths >= 1) & (lengths <= T)).all()):
            raise ValueError(f"every length must be in 1..{T}, got {lengths.tolist()}")
        if self.method == "last":
            return pool_last(states, lengths, self.num_directions)
        if self.method == "mean":
            return pool_mean(states, lengths)
        if self.method == "max":
            return pool_max(states, lengths)
        return self._attend(states, lengths)

    def _attend(self, states: Tensor, lengths: Tensor) -> Tensor:  # (B, T, H), (B,) -> (B, H)
        mask = lengths_mask(lengths, states.shape[1])  # (B, T)
        # Zero the padding before scoring and summing: a weight of 0 times an inf state would be nan.
        states = states.masked_fill(~mask.unsqueeze(2), 0.0)  # (B, T, H)
        scores = self.scorer(states).squeeze(2)  # (B, T)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=1)  # (B, T), exactly 0 on padding
        self.attention_weights = weights.detach()
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (B, 1, T) @ (B, T, H) -> (B, H)
