from __future__ import annotations

from torch import Tensor, nn

from seqtasks.registry import HEADS


@HEADS.register("lm")
class LanguageModelHead(nn.Module):
    """Next-token logits from each encoder state: dropout, then a linear layer to the vocabulary."""

    def __init__(self, input_size: int, vocab_size: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(input_size, vocab_size)

    def forward(self, states: Tensor) -> Tensor:  # (B, T, H) -> (B, T, V)
        return self.project(self.dropout(states))
