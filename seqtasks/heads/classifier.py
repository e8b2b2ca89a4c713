from __future__ import annotations

from torch import Tensor, nn

from seqtasks.heads.pooling import SequencePooling
from seqtasks.registry import HEADS


@HEADS.register("classifier")
class SequenceClassifier(nn.Module):
    """Many-to-one: pool the encoder states (last, mean, max, attention), dropout, then class logits."""

    def __init__(self, input_size: int, num_classes: int, pooling: str = "max", num_directions: int = 1,
                 attention_size: int = 0, dropout: float = 0.0):
        super().__init__()
        self.pool = SequencePooling(input_size, pooling, num_directions, attention_size)
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(input_size, num_classes)

    def forward(self, states: Tensor, lengths: Tensor) -> Tensor:  # (B, T, H), (B,) -> (B, C)
        return self.project(self.dropout(self.pool(states, lengths)))
