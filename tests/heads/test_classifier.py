"""The classifier head: one logit vector per sequence, unchanged by padding, for every pooling."""

import pytest
import torch

from seqtasks.configuration.registry import HEADS
from seqtasks.heads.pooling import POOLING_METHODS


@pytest.mark.parametrize("pooling", POOLING_METHODS)
def test_logits_per_sequence_ignore_padding(pooling):
    torch.manual_seed(0)
    head = HEADS.build({"name": "classifier", "pooling": pooling}, input_size=6, num_classes=3, num_directions=2).eval()
    states = torch.randn(2, 4, 6)
    logits = head(states, torch.tensor([4, 2]))
    assert logits.shape == (2, 3)
    padded = torch.cat([states, torch.randn(2, 3, 6) * 100], dim=1)  # garbage after each sequence
    torch.testing.assert_close(head(padded, torch.tensor([4, 2])), logits)
    alone = head(states[1:, :2], torch.tensor([2]))
    torch.testing.assert_close(alone, logits[1:])
