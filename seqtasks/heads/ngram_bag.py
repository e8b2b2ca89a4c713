"""A bag of hashed token n-grams as a log-linear classifier beside the network (fastText: Joulin et
al. 2017, "Bag of Tricks for Efficient Text Classification").

Every n-gram of orders 1..`order` of a sequence, with a start and an end marker around it, is
hashed into one of `buckets` rows of an embedding; the mean of its rows, projected to the classes,
gives logits that the classification task adds to its head's: a product of the two models'
distributions, trained together. On surnames the bag alone scores as well as the character
BiLSTM in a seventh of the time, and the two err on different names (docs/results.md).

The hash is computed with tensor arithmetic on the token ids (no strings, no Python loop over
tokens), so it runs inside the model's forward and exports to ONNX with it; different n-grams can
share a row (hashing trick), which costs little once buckets are several times the distinct n-grams.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqtasks.tensors import lengths_mask

# Odd multiplier of the polynomial rolling hash: h <- (h * MULTIPLIER + token) mod buckets stays below
# buckets * MULTIPLIER + vocabulary, far inside int64.
MULTIPLIER = 1_000_003


class NgramBag(nn.Module):
    """(tokens (B, T), lengths (B,)) -> class logits (B, C) from the mean of the n-grams' embeddings."""

    def __init__(self, vocab_size: int, num_classes: int, order: int, buckets: int, dim: int):
        super().__init__()
        self.start, self.end = vocab_size, vocab_size + 1  # marker ids no token has
        self.order, self.buckets = order, buckets
        self.embedding = nn.Embedding(buckets, dim)
        nn.init.normal_(self.embedding.weight, std=dim**-0.5)
        self.project = nn.Linear(dim, num_classes)
        # Zero logits at the start: the sum begins as the network alone and the bag earns its share.
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def ngram_ids(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """-> bucket ids (B, N) of every n-gram of every order and which of them are real (B, N): N
        counts the windows of all orders over the T + 2 marked positions."""
        batch, steps = tokens.shape
        lengths = lengths.to(tokens.device)
        # (B, T + 2): start marker, the tokens, then the end marker at each row's own length + 1
        marked = torch.cat([tokens.new_full((batch, 1), self.start), tokens, tokens.new_zeros((batch, 1))], dim=1)
        real = lengths_mask(lengths + 2, steps + 2)  # (B, T + 2)
        marked = marked.masked_fill(real & ~lengths_mask(lengths + 1, steps + 2), self.end)
        ids, masks = [], []
        for n in range(1, self.order + 1):
            windows = steps + 3 - n  # n-grams ending at positions n-1 .. T+1
            hashed = torch.full_like(marked[:, :windows], n)  # the order salts the hash
            for k in range(n):
                hashed = (hashed * MULTIPLIER + marked[:, k : k + windows]) % self.buckets
            ids.append(hashed)
            masks.append(real[:, n - 1 :])  # a window is real when its last position is
        return torch.cat(ids, dim=1), torch.cat(masks, dim=1)  # (B, N) each

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        ids, real = self.ngram_ids(tokens, lengths)  # (B, N)
        weights = real.to(self.embedding.weight.dtype).unsqueeze(-1)  # (B, N, 1)
        bag = (self.embedding(ids) * weights).sum(1) / weights.sum(1)  # (B, D)
        return self.project(bag)  # (B, C)
