"""Contiguous-stream batching for language models with truncated BPTT.

The token stream is cut into `batch_size` contiguous rows; batch i holds columns
[i*seq_len, (i+1)*seq_len) of every row, so row b of batch i+1 continues row b of batch i, and
the model can carry its hidden state from one batch to the next (char-rnn's scheme). Under DDP
the stream is cut into world_size * batch_size rows and each rank reads its own rows.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import IterableDataset


def stream_rows(tokens: Tensor, rows: int, seq_len: int) -> Tensor:
    """(N,) -> (rows, L+1) contiguous rows; L a multiple of seq_len; the extra column is the last target."""
    steps = (len(tokens) - 1) // (rows * seq_len)
    if steps == 0:
        raise ValueError(f"{len(tokens)} tokens cannot fill even one batch of {rows} rows x {seq_len} steps "
                         "(+1 for the targets); lower data.batch_size or task.tbptt_steps")
    length = steps * seq_len
    # Row r starts at r*length; its last target is the first token of row r+1.
    starts = torch.arange(rows) * length
    return torch.stack([tokens[s:s + length + 1] for s in starts.tolist()])  # (rows, L+1)


class StreamBatches(IterableDataset):
    """Yields (inputs, targets), each (batch_size, seq_len), in stream order for this rank."""

    def __init__(self, tokens: Tensor, batch_size: int, seq_len: int):
        super().__init__()
        self.tokens = tokens
        self.batch_size = batch_size
        self.seq_len = seq_len

    @staticmethod
    def _rank_and_world() -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _rows(self) -> Tensor:
        rank, world = self._rank_and_world()
        rows = stream_rows(self.tokens, self.batch_size * world, self.seq_len)
        return rows[rank * self.batch_size:(rank + 1) * self.batch_size]  # (B, L+1)

    def __len__(self) -> int:
        _, world = self._rank_and_world()
        return (len(self.tokens) - 1) // (self.batch_size * world * self.seq_len)

    def __iter__(self):
        rows = self._rows()
        for start in range(0, rows.shape[1] - 1, self.seq_len):
            chunk = rows[:, start:start + self.seq_len + 1]  # (B, T+1)
            yield chunk[:, :-1], chunk[:, 1:]  # inputs (B, T), targets (B, T)
