"""Length-bucketed batches with a token budget, for any task whose examples have a length
(translation now; classification and tagging can reuse it).

Examples are sorted by length and cut into batches whose padded size (longest length in the
batch x number of examples) stays within `max_tokens`, so short sentences come many to a batch and
long ones few, with little padding. With `shuffle`, equal lengths are ordered at random (a fresh
draw each epoch, so batch contents change between epochs) and the batch order is shuffled; the
order depends only on (seed, epoch). Under DDP each rank takes every world_size-th batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

from seqtasks.tensors import rank_and_world


class TensorBatch:
    """Mixin for batch dataclasses: `to(device)` and `pin_memory()` move every Tensor field
    (Lightning's batch transfer and DataLoader(pin_memory=True) call them); other fields (lists of
    indices or strings) stay. A batch's len() is its number of examples."""

    def _map_tensors(self, fn):
        return dataclasses.replace(
            self,
            **{
                field.name: fn(getattr(self, field.name))
                for field in dataclasses.fields(self)
                if isinstance(getattr(self, field.name), Tensor)
            },
        )

    def to(self, device: torch.device | str, non_blocking: bool = False):
        return self._map_tensors(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self):
        return self._map_tensors(Tensor.pin_memory)


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Token id lists -> padded ids (B, T) long, with T the longest length, and lengths (B,)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    padded = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for row, ids in enumerate(sequences):
        padded[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return padded.to(device), lengths.to(device)


def teacher_forcing_targets(
    sequences: Sequence[Sequence[int]], bos: int, eos: int, pad_id: int
) -> tuple[Tensor, Tensor]:
    """Target id lists -> the decoder's inputs (<bos> + ids) and outputs (ids + <eos>), each (B, T + 1) padded."""
    target_in, _ = pad_sequences([[bos, *map(int, ids)] for ids in sequences], pad_id)
    target_out, _ = pad_sequences([[*map(int, ids), eos] for ids in sequences], pad_id)
    return target_in, target_out


def length_sorted_chunks(sequences: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of the non-empty sequences, shortest first, in chunks of batch_size: inference
    batches with little padding (callers put results back by index)."""
    order = sorted((i for i, ids in enumerate(sequences) if ids), key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


TRAIN_SEED = 0  # the bucketing order is a function of (this, epoch): reruns see the same batches


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The random numbers of one epoch's data order: a function of (seed, epoch) alone, so a resumed
    run draws what the uninterrupted one drew."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class TokenBatchSampler(Sampler[list[int]]):
    """Yields lists of example indices: length-sorted batches of at most `max_tokens` padded tokens.

    An example longer than `max_tokens` forms a batch of its own (never dropped). Use as
    `DataLoader(dataset, batch_sampler=TokenBatchSampler(...))`. Call `set_epoch(epoch)` before each
    epoch (Lightning does, through `.sampler`) for a new order. Under DDP (torch.distributed
    initialised) rank r yields batches r, r + world, r + 2 world, ...; the list is first filled up to a
    multiple of world by repeating batches from its start, so all ranks yield `len(self)` batches
    (the repeated examples are seen twice that epoch: deduplicate evaluation outputs by index).
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, shuffle: bool, seed: int = 0):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._cache: tuple[tuple[int, int, int, int], list[list[int]]] | None = None
        self._start = 0  # batches of the epoch already seen before a resume

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> TokenBatchSampler:
        # Lightning calls set_epoch on `dataloader.batch_sampler.sampler` at the start of each
        # epoch (not on the batch sampler itself): this makes that call reach us.
        return self

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of `epoch` (default: the current one) in iteration order, before DDP sharding."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            epoch = 0  # the order does not depend on it
        generator = epoch_generator(self.seed, epoch)
        if self.shuffle:
            # Random order, then a stable sort by length: equal lengths end up in random order.
            order = torch.randperm(len(self.lengths), generator=generator)
            order = order[torch.sort(self.lengths[order], stable=True).indices]
        else:
            order = torch.sort(self.lengths, stable=True).indices
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index, length in zip(order.tolist(), self.lengths[order].tolist(), strict=True):
            widest = max(longest, length)
            if current and widest * (len(current) + 1) > self.max_tokens:
                batches.append(current)
                current, widest = [], length
            current.append(index)
            longest = widest
        if current:
            batches.append(current)
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def _rank_batches(self) -> list[list[int]]:
        rank, world = rank_and_world()
        key = (self.epoch if self.shuffle else 0, rank, world, self.max_tokens)
        if self._cache is None or self._cache[0] != key:
            batches = self.batches()
            if world > 1 and batches:
                missing = -len(batches) % world
                batches = batches + [batches[i % len(batches)] for i in range(missing)]
                batches = batches[rank::world]
            self._cache = (key, batches)
        return self._cache[1]

    def start_at(self, batch: int) -> None:
        """The next iteration starts at this batch of the epoch (resuming within an epoch); the
        ones after it start at 0 again."""
        self._start = batch

    def __iter__(self) -> Iterator[list[int]]:
        start, self._start = self._start, 0
        return iter(list(self._rank_batches())[start:])

    def __len__(self) -> int:
        return len(self._rank_batches())
