"""Tagging heads (many-to-many, synced): one tag per encoder state.

Both share one interface, so a tagging task works with either:

    head(states)               states (B, T, H) -> emission scores (B, T, K)
    head.loss(states, tags, mask)   -> scalar float32: mean negative log-likelihood per real word
    head.decode(states, mask)  -> (B, T) long tag ids; -1 at padded positions

Each head defines the last two on emissions (`emission_loss`, `decode_emissions`), so that
emissions computed elsewhere (an ONNX graph: seqtasks/onnx/backend.py) are scored and decoded alike.

`softmax_tagger` picks each word's tag independently (dropout, then a linear layer, then softmax);
`crf_tagger` scores whole tag sequences with a linear-chain CRF over the same emissions
(`seqtasks.heads.crf`), and decodes with Viterbi. Masks are prefix masks (B, T) bool, True at real
words, at least one per sequence; nothing at a padded position changes a loss or a prediction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.configuration.registry import HEADS
from seqtasks.configuration.validation import PositiveInt, Rate
from seqtasks.heads.base import Head
from seqtasks.heads.crf import LinearChainCRF

PADDING = -1  # predicted tag id at padded positions


class TaggerHead(Head):
    """Dropout, then a linear layer from encoder states to one score per tag."""

    def __init__(self, input_size: PositiveInt, num_tags: PositiveInt, dropout: Rate = 0.33):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"a tagger needs at least one tag, got num_tags={num_tags}")
        self.num_tags = num_tags
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(input_size, num_tags)

    def forward(self, states: Tensor) -> Tensor:
        """states (B, T, H) -> emissions (B, T, K), float32 (bf16-safe for losses and decoding)."""
        return self.project(self.dropout(states)).float()

    def loss(self, states: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        return self.emission_loss(self(states), tags, mask)

    def decode(self, states: Tensor, mask: Tensor) -> Tensor:
        return self.decode_emissions(self(states), mask)

    def emission_loss(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        raise NotImplementedError

    def decode_emissions(self, emissions: Tensor, mask: Tensor) -> Tensor:
        raise NotImplementedError


@HEADS.register("softmax_tagger")
class SoftmaxTagger(TaggerHead):
    """One tag per position, each chosen independently: dropout + linear + softmax (cross-entropy).
    `label_smoothing` moves that share of each word's target onto every tag alike in the training
    loss; validation and test report the plain cross-entropy."""

    def __init__(
        self, input_size: PositiveInt, num_tags: PositiveInt, dropout: Rate = 0.33, label_smoothing: Rate = 0.0
    ):
        super().__init__(input_size, num_tags, dropout)
        self.label_smoothing = label_smoothing

    def loss(self, states: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        return self.emission_loss(self(states), tags, mask, self.label_smoothing)

    def emission_loss(self, emissions: Tensor, tags: Tensor, mask: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """(B, T, K), (B, T) long, (B, T) bool -> mean cross-entropy over the real words."""
        return F.cross_entropy(emissions[mask], tags[mask], label_smoothing=label_smoothing)  # (N, K), (N,) -> ()

    @torch.no_grad()
    def decode_emissions(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """(B, T, K), (B, T) bool -> (B, T) long argmax tags, PADDING (-1) where mask is False."""
        return emissions.argmax(-1).masked_fill(~mask, PADDING)


@HEADS.register("crf_tagger")
class CRFTagger(TaggerHead):
    """Linear emissions + a linear-chain CRF over tag transitions; Viterbi decoding."""

    def __init__(self, input_size: PositiveInt, num_tags: PositiveInt, dropout: Rate = 0.33):
        super().__init__(input_size, num_tags, dropout)
        self.crf = LinearChainCRF(num_tags)

    def emission_loss(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """(B, T, K), (B, T) long, (B, T) bool -> sequence NLL summed over the batch / real words
        (per word, on the scale of the softmax tagger's loss)."""
        log_likelihood = self.crf.log_likelihood(emissions, tags, mask)  # (B,)
        return -log_likelihood.sum() / mask.sum().clamp(min=1)

    @torch.no_grad()
    def decode_emissions(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """(B, T, K), (B, T) bool -> (B, T) long Viterbi tags, PADDING (-1) where mask is False."""
        paths = self.crf.decode(emissions, mask)  # B lists, each as long as its mask
        out = torch.full(mask.shape, PADDING, dtype=torch.long, device=mask.device)  # (B, T)
        for row, path in enumerate(paths):
            out[row, : len(path)] = torch.tensor(path, dtype=torch.long, device=mask.device)
        return out
