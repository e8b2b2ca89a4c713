"""Contiguous-stream batching for language models with truncated BPTT.

The token stream is cut into `batch_size` contiguous rows; batch i holds columns
[i*seq_len, (i+1)*seq_len) of every row, so row b of batch i+1 continues row b of batch i, and
the model can carry its hidden state from one batch to the next (char-rnn's scheme). Under DDP
the stream is cut into world_size * batch_size rows and each rank reads its own rows.

With `shift_each_epoch`, each training epoch's rows start a random 0 to seq_len - 1 tokens into the
stream, drawn from (TRAIN_SEED, epoch): the points where backpropagation is truncated move from one
epoch to the next, so no token is always the first of its piece (AWD-LSTM varies its BPTT length
for the same reason). A DataLoader reads the batches through `StreamOrder`, whose `set_epoch`
Lightning calls at the start of every epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from seqtasks.data.batching import TRAIN_SEED, TensorBatch, epoch_generator
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


def steps_per_row(num_tokens: int, rows: int, seq_len: int, shifted: bool = False) -> int:
    """Batches that `rows` rows of `seq_len`-step pieces cut from num_tokens tokens give (+1 for the
    targets); a shifted stream starts up to seq_len - 1 tokens in, so every epoch keeps that much spare."""
    return (num_tokens - 1 - (seq_len - 1 if shifted else 0)) // (rows * seq_len)


class StreamBatches(Dataset):
    """This rank's StreamBatch at each place (offset, position) of the stream, each (batch_size,
    seq_len); iterating yields the current epoch's batches in stream order.

    `tokens` is a 1-d Tensor or NumPy array (a memory map of a corpus larger than memory works: each
    batch reads just its own B x (T+1) tokens). Row r of the world_size * batch_size rows is the
    r-th contiguous stretch of L = steps * seq_len tokens after the epoch's offset; its last target
    is the first token of row r + 1."""

    def __init__(self, tokens: Tensor | np.ndarray, batch_size: int, seq_len: int, shift_each_epoch: bool = False):
        super().__init__()
        self.tokens = tokens
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.shift_each_epoch = shift_each_epoch
        self.epoch = 0
        self._start = 0  # batches of the epoch already seen before a resume

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def start_at(self, batch: int) -> None:
        """The next iteration starts at this batch (resuming within an epoch); later ones at 0."""
        self._start = batch

    def __len__(self) -> int:
        _, world = rank_and_world()
        return steps_per_row(len(self.tokens), self.batch_size * world, self.seq_len, self.shift_each_epoch)

    def offset(self) -> int:
        """Where this epoch's rows start: 0, or with shift_each_epoch a draw from (TRAIN_SEED, epoch)."""
        if not self.shift_each_epoch:
            return 0
        return int(torch.randint(self.seq_len, (), generator=epoch_generator(TRAIN_SEED, self.epoch)))

    def places(self) -> Iterator[tuple[int, int]]:
        """(offset, position) of this epoch's batches, from the resume point (once) or the first."""
        _, world = rank_and_world()
        if len(self) == 0:
            raise ValueError(
                f"{len(self.tokens)} tokens cannot fill even one batch of {self.batch_size * world} rows x "
                f"{self.seq_len} steps (+1 for the targets); lower data.batch_size or data.seq_len"
            )
        skip, self._start = self._start, 0
        offset = self.offset()
        return ((offset, position) for position in range(skip, len(self)))

    def __getitem__(self, place: tuple[int, int]) -> StreamBatch:
        offset, position = place
        rank, _ = rank_and_world()
        row_length = len(self) * self.seq_len  # L
        rows = list(range(rank * self.batch_size, (rank + 1) * self.batch_size))
        starts = [offset + row * row_length + position * self.seq_len for row in rows]
        chunk = torch.as_tensor(np.stack([np.asarray(self.tokens[s : s + self.seq_len + 1]) for s in starts]))
        chunk = chunk.long()  # (B, T+1)
        return StreamBatch(chunk[:, :-1], chunk[:, 1:], rows, position)

    def __iter__(self) -> Iterator[StreamBatch]:
        return (self[place] for place in self.places())


class StreamOrder(Sampler[tuple[int, int]]):
    """A stream's batch places in order, as a DataLoader's sampler (with batch_size=None): Lightning
    sets its epoch, and `ResumableLoader` its resume point."""

    def __init__(self, stream: StreamBatches):
        self.stream = stream

    def set_epoch(self, epoch: int) -> None:
        self.stream.set_epoch(epoch)

    def start_at(self, batch: int) -> None:
        self.stream.start_at(batch)

    def __len__(self) -> int:
        return len(self.stream)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return self.stream.places()
