from __future__ import annotations

from torch import Tensor, nn

from seqtasks.configuration.registry import HEADS
from seqtasks.configuration.validation import PositiveInt, Rate
from seqtasks.heads.base import Head


@HEADS.register("lm")
class LanguageModelHead(Head):
    """Next-token logits from each encoder state: dropout, then a linear layer to the vocabulary."""

    def __init__(self, input_size: PositiveInt, vocab_size: PositiveInt, dropout: Rate = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(input_size, vocab_size)

    def forward(self, states: Tensor) -> Tensor:  # (B, T, H) -> (B, T, V)
        return self.project(self.dropout(states))
