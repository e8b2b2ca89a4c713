"""Contiguous-stream batching for language models with truncated BPTT.

The token stream is cut into `batch_size` contiguous rows; batch i holds columns
[i*seq_len, (i+1)*seq_len) of every row, so row b of batch i+1 continues row b of batch i, and
the model can carry its hidden state from one batch to the next (char-rnn's scheme). Under DDP
the stream is cut into world_size * batch_size rows and each rank reads its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import IterableDataset

from seqtasks.data.batching import TensorBatch
from seqtasks.tensors import rank_and_world


@dataclass
class StreamBatch(TensorBatch):
    """B rows of the stream, T steps each; `rows` are the rows' places among all ranks' rows and
    `position` is the batch's place along them, so (row, position) names each row's piece."""

    inputs: Tensor  # (B, T) long
    targets: Tensor  # (B, T) long: inputs shifted by one token
    rows: list[int]
    position: int

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def num_tokens(self) -> int:
        return self.inputs.numel()

    @property
    def keys(self) -> list[tuple[int, int]]:
        return [(row, self.position) for row in self.rows]


def steps_per_row(num_tokens: int, rows: int, seq_len: int) -> int:
    """Batches that `rows` rows of `seq_len`-step pieces cut from num_tokens tokens give (+1 for the targets)."""
    return (num_tokens - 1) // (rows * seq_len)


class StreamBatches(IterableDataset):
    """Yields StreamBatch, each (batch_size, seq_len), in stream order for this rank.

    `tokens` is a 1-d Tensor or NumPy array (a memory map of a corpus larger than memory works: each
    batch reads just its own B x (T+1) tokens). Row r of the world_size * batch_size rows is the
    r-th contiguous stretch of L = steps * seq_len tokens; its last target is the first token of row
    r + 1."""

    def __init__(self, tokens: Tensor | np.ndarray, batch_size: int, seq_len: int):
        super().__init__()
        self.tokens = tokens
        self.batch_size = batch_size
        self.seq_len = seq_len
        self._start = 0  # batches of the epoch already seen before a resume

    def start_at(self, batch: int) -> None:
        """The next iteration starts at this batch (resuming within an epoch); later ones at 0."""
        self._start = batch

    def __len__(self) -> int:
        _, world = rank_and_world()
        return steps_per_row(len(self.tokens), self.batch_size * world, self.seq_len)

    def __iter__(self):
        rank, world = rank_and_world()
        steps = len(self)
        if steps == 0:
            raise ValueError(
                f"{len(self.tokens)} tokens cannot fill even one batch of {self.batch_size * world} rows x "
                f"{self.seq_len} steps (+1 for the targets); lower data.batch_size or data.seq_len"
            )
        row_length = steps * self.seq_len  # L
        rows = list(range(rank * self.batch_size, (rank + 1) * self.batch_size))
        skip, self._start = self._start, 0
        for position in range(skip, steps):
            starts = [row * row_length + position * self.seq_len for row in rows]
            chunk = torch.as_tensor(np.stack([np.asarray(self.tokens[s : s + self.seq_len + 1]) for s in starts]))
            chunk = chunk.long()  # (B, T+1)
            yield StreamBatch(chunk[:, :-1], chunk[:, 1:], rows, position)
