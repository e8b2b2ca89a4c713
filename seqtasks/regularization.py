"""Dropout variants for recurrent models, training only.

- word dropout: replace random tokens by <unk>, so that the <unk> embedding is learned and the
  model leans less on any single word (words unseen in training map to <unk>);
- embedding dropout (Gal and Ghahramani 2016, AWD-LSTM): drop whole rows of the embedding matrix,
  so a dropped token vanishes everywhere it occurs in the batch;
- locked (variational) dropout: one mask per sequence, the same at every time step, so a unit
  dropped from a sequence stays dropped for all of it instead of flickering step by step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def word_dropout(tokens: Tensor, p: float, unk_id: int, real: Tensor) -> Tensor:
    """tokens (B, T) -> (B, T): each real (not padding) token becomes unk_id with probability p."""
    if p <= 0.0:
        return tokens
    drop = (torch.rand(tokens.shape, device=tokens.device) < p) & real
    return tokens.masked_fill(drop, unk_id)


def embedding_dropout(embedding: nn.Embedding, tokens: Tensor, p: float) -> Tensor:
    """tokens (B, T) -> embeddings (B, T, E) with each vocabulary row zeroed with probability p
    (the others scaled by 1 / (1 - p)); p = 0: the plain lookup."""
    if p <= 0.0:
        return embedding(tokens)
    keep = torch.empty(embedding.weight.shape[0], 1, device=tokens.device).bernoulli_(1 - p) / (1 - p)  # (V, 1)
    return F.embedding(tokens, embedding.weight * keep, embedding.padding_idx)


def locked_dropout(x: Tensor, p: float) -> Tensor:
    """x (B, T, F) -> x with one dropout mask (B, 1, F) per sequence, shared by all T steps."""
    if p <= 0.0:
        return x
    mask = torch.empty(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype).bernoulli_(1 - p) / (1 - p)
    return x * mask
