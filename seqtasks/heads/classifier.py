from __future__ import annotations

from torch import Tensor, nn

from seqtasks.configuration.registry import HEADS
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt, Rate
from seqtasks.heads.base import Head
from seqtasks.heads.pooling import PoolingMethod, SequencePooling


@HEADS.register("classifier")
class SequenceClassifier(Head):
    """Many-to-one: pool the encoder states (last, mean, max, attention), dropout, then class logits."""

    def __init__(
        self,
        input_size: PositiveInt,
        num_classes: PositiveInt,
        pooling: PoolingMethod = "max",
        num_directions: PositiveInt = 1,
        attention_size: NonNegativeInt = 0,
        dropout: Rate = 0.3,
    ):
        super().__init__()
        self.pool = SequencePooling(input_size, pooling, num_directions, attention_size)
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(input_size, num_classes)

    def forward(self, states: Tensor, lengths: Tensor) -> Tensor:  # (B, T, H), (B,) -> (B, C)
        return self.project(self.dropout(self.pool(states, lengths)))
