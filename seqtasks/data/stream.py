"""Contiguous-stream batching for language models with truncated BPTT.

The token stream is cut into `batch_size` contiguous rows; batch i holds columns
[i*seq_len, (i+1)*seq_len) of every row, so row b of batch i+1 continues row b of batch i, and
the model can carry its hidden state from one batch to the next (char-rnn's scheme). Under DDP
the stream is cut into world_size * batch_size rows and each rank reads its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def stream_rows(tokens: Tensor, rows: int, seq_len: int) -> Tensor:
    """(N,) -> (rows, L+1) contiguous rows; L a multiple of seq_len; the extra column is the last target."""
    steps = steps_per_row(len(tokens), rows, seq_len)
    if steps == 0:
        raise ValueError(
            f"{len(tokens)} tokens cannot fill even one batch of {rows} rows x {seq_len} steps "
            "(+1 for the targets); lower data.batch_size or data.seq_len"
        )
    length = steps * seq_len
    # Row r starts at r*length; its last target is the first token of row r+1.
    starts = torch.arange(rows) * length
    return torch.stack([tokens[s : s + length + 1] for s in starts.tolist()])  # (rows, L+1)


class StreamBatches(IterableDataset):
    """Yields StreamBatch, each (batch_size, seq_len), in stream order for this rank."""

    def __init__(self, tokens: Tensor, batch_size: int, seq_len: int):
        super().__init__()
        self.tokens = tokens
        self.batch_size = batch_size
        self.seq_len = seq_len

    def __len__(self) -> int:
        _, world = rank_and_world()
        return steps_per_row(len(self.tokens), self.batch_size * world, self.seq_len)

    def __iter__(self):
        rank, world = rank_and_world()
        first = rank * self.batch_size
        rows = stream_rows(self.tokens, self.batch_size * world, self.seq_len)[first : first + self.batch_size]
        row_ids = list(range(first, first + self.batch_size))
        for position, start in enumerate(range(0, rows.shape[1] - 1, self.seq_len)):
            chunk = rows[:, start : start + self.seq_len + 1]  # (B, T+1)
            yield StreamBatch(chunk[:, :-1], chunk[:, 1:], row_ids, position)
