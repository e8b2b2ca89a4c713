"""Many sequences of token ids in two flat arrays, instead of a Python list (and int objects) per
token: `values` holds every sequence's ids one after another, `offsets[i]:offsets[i + 1]` is
sequence i. A corpus of a hundred million tokens is 400 MB of int32 here, against several GB as
lists of ints, and DataLoader workers receive it as two buffers.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence

import numpy as np


class Ragged(Sequence):
    def __init__(self, values: np.ndarray, offsets: np.ndarray):
        self.values = values
        self.offsets = offsets

    @classmethod
    def build(cls, sequences: Iterable[Sequence[int]]) -> Ragged:
        """From sequences, streamed (each is read once and not kept)."""
        builder = RaggedBuilder()
        for sequence in sequences:
            builder.append(sequence)
        return builder.build()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        return self.values[self.offsets[index] : self.offsets[index + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


class RaggedBuilder:
    """Appends sequences to growing compact arrays; build() makes the Ragged."""

    def __init__(self):
        self.values, self.offsets = array("i"), array("q", [0])

    def append(self, sequence: Sequence[int]) -> None:
        self.values.extend(sequence)
        self.offsets.append(len(self.values))

    def build(self) -> Ragged:
        return Ragged(
            np.frombuffer(self.values, dtype=np.int32).copy(), np.frombuffer(self.offsets, dtype=np.int64).copy()
        )
