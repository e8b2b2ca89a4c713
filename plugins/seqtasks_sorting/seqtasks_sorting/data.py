"""`data=sorting`: random sequences of integers, each paired with the same integers sorted.

Every split is generated from (seed, split), so a run needs no files and two runs with the same
seed see the same examples. `test=<file>` (one sequence per line, whitespace-separated integers;
blank lines skipped) replaces the generated test split: `python -m seqtasks.evaluate test=...`.
The reference output is always computed here, by `sorted_line`, never read from a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from seqtasks.configuration.registry import DATASETS, TOKENIZERS
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt
from seqtasks.data.base import SPLITS, TokenBudgetData
from seqtasks.data.batching import TensorBatch, pad_sequences
from seqtasks.data.ragged import Ragged, RaggedBuilder
from seqtasks.data.text import iter_lines
from seqtasks.errors import ConfigError, DataError
from seqtasks.tensors import lengths_mask
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.word import WordTokenizer


def sorted_line(line: str) -> str:
    """'3 1 10 2' -> '1 2 3 10': the tokens in numeric order, each written as it was."""
    return " ".join(sorted(line.split(), key=int))


def check_tokenizers(tokenizers: dict[str, Tokenizer]) -> None:
    """One side, `tokens`, a word tokenizer with <pad>: one id per whitespace-separated integer, so
    that an input and its sorted output have the same length (the model writes one token per input
    position)."""
    tokenizer = tokenizers.get("tokens")
    if not isinstance(tokenizer, WordTokenizer):
        raise ConfigError("task 'sorting' reads whitespace-separated integers: set tokenizer=word")
    if tokenizer.vocab.pad_id is None:
        raise ConfigError("task 'sorting' needs a tokenizer with a <pad> token (tokenizer.specials)")


@dataclass
class EncodedSorting:
    """A split as ids: each example's input and its sorted target (Ragged rows of equal length)."""

    tokens: Ragged
    targets: Ragged

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.tokens[i], self.targets[i]


@dataclass
class SortingBatch(TensorBatch):
    tokens: Tensor  # (B, T) long, padded with <pad>
    targets: Tensor  # (B, T) long: tokens sorted, padded with <pad>
    lengths: Tensor  # (B,) long, >= 1
    indices: list[int]  # position of each example in its split

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())

    @property
    def mask(self) -> Tensor:
        """(B, T) bool, True at real tokens."""
        return lengths_mask(self.lengths, self.tokens.shape[1])


class CollateSorting:
    """[(index, (token ids, target ids))] -> SortingBatch (a class, not a closure: workers pickle it)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[tuple[int, tuple[np.ndarray, np.ndarray]]]) -> SortingBatch:
        tokens, lengths = pad_sequences([ids for _, (ids, _) in examples], self.pad_id)
        targets, _ = pad_sequences([ids for _, (_, ids) in examples], self.pad_id)
        return SortingBatch(tokens, targets, lengths, [index for index, _ in examples])


@DATASETS.register("sorting")
class SortingData(TokenBudgetData):
    """Random integer sequences and the same sequences sorted, generated from a seed (plugin seqtasks-sorting).

    `test=<file>` (one sequence of whitespace-separated integers per line) replaces the generated test split."""

    def __init__(
        self,
        vocab_size: PositiveInt = 10,
        min_length: PositiveInt = 1,
        max_length: PositiveInt = 8,
        train_size: PositiveInt = 20000,
        val_size: PositiveInt = 500,
        test_size: NonNegativeInt = 500,
        seed: int = 0,
        test: str | None = None,
        max_tokens: PositiveInt = 1024,
        **options: Any,
    ):
        super().__init__(max_tokens=max_tokens, **options)
        if min_length > max_length:
            raise ConfigError(f"data.min_length={min_length} is above data.max_length={max_length}")
        self.vocab_size = vocab_size
        self.min_length, self.max_length = min_length, max_length
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.seed = seed
        self.test = test

    def split_source(self, split: str) -> str | Path | None:
        if split == "test" and self.test is not None:
            return Path(self.test)
        if self.sizes[split] == 0:
            return None  # test_size=0 and no test file: no test split
        return f"sorting data ({split} split, seed {self.seed})"

    def read_split(self, split: str) -> list[str]:
        """The split's input lines, e.g. '7 0 3'."""
        if split == "test" and self.test is not None:
            return self.read_file(Path(self.test))
        # One generator per (seed, split): the validation set does not change with train_size.
        rng = np.random.default_rng([self.seed, SPLITS.index(split)])
        lengths = rng.integers(self.min_length, self.max_length + 1, size=self.sizes[split])  # (N,)
        return [" ".join(map(str, rng.integers(0, self.vocab_size, size=n))) for n in lengths.tolist()]

    @staticmethod
    def read_file(path: Path) -> list[str]:
        lines = []
        for number, line in enumerate(iter_lines(path), start=1):
            if not line.strip():
                continue
            try:
                sorted_line(line)  # the reference must exist: every token an integer
            except ValueError:
                raise DataError(path, "expected whitespace-separated integers", number) from None
            lines.append(line)
        return lines

    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        # Inputs and outputs share one vocabulary: a sorted line holds the same tokens.
        return {"tokens": TOKENIZERS.build(config, "tokenizer").fit(self.read("train"))}

    def check_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        check_tokenizers(tokenizers)

    def encode_split(self, split: str) -> EncodedSorting:
        tokenizer = self.tokenizers["tokens"]
        tokens, targets = RaggedBuilder(), RaggedBuilder()
        for line in self.read(split):
            tokens.append(tokenizer.encode(line))
            targets.append(tokenizer.encode(sorted_line(line)))
        return EncodedSorting(tokens.build(), targets.build())

    def lengths(self, examples: EncodedSorting) -> list[int]:
        return examples.tokens.lengths().tolist()

    def collate(self) -> CollateSorting:
        return CollateSorting(self.tokenizers["tokens"].vocab.pad_id)
