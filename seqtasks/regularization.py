"""Word dropout: during training, replace random tokens by <unk>, so that the <unk> embedding is
learned and the model leans less on any single word (words unseen in training map to <unk>)."""

from __future__ import annotations

import torch
from torch import Tensor


def word_dropout(tokens: Tensor, p: float, unk_id: int, real: Tensor) -> Tensor:
    """tokens (B, T) -> (B, T): each real (not padding) token becomes unk_id with probability p."""
    if p <= 0.0:
        return tokens
    drop = (torch.rand(tokens.shape, device=tokens.device) < p) & real
    return tokens.masked_fill(drop, unk_id)
