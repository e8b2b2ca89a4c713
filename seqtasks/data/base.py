"""What every datamodule shares, and the skeleton of the token-budget ones.

`SeqDataModule` (the base of the `datasets` registry):
- the split cache: `read(split)` reads a split's raw examples once (`read_split`), `encoded(split)`
  encodes them once per set of tokenizers (`encode_split`);
- tokenizers flow forward: `build_tokenizers(config)` fits them on the training split
  (`fit_tokenizers`) and `use_tokenizers` takes fitted ones (from a checkpoint); either clears the
  encodings;
- `has_test`: whether the data has a test split (`split_source("test")` is not None).

`TokenBudgetData` adds one sampler lifecycle and one loader for datasets of examples with a
length: per split one `TokenBatchSampler` (length-bucketed batches of at most `max_tokens` padded
tokens; shuffled per epoch for training, Lightning calling its `set_epoch`), created once per set
of tokenizers, and a DataLoader over the encoded examples with the subclass's collate object, a
plain class instance so that DataLoader workers can pickle it under the spawn start method (the
macOS and Windows default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from seqtasks.configuration.registry import DATASETS
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt
from seqtasks.data.batching import TRAIN_SEED, TokenBatchSampler
from seqtasks.errors import ConfigError, DataError
from seqtasks.tokenizers.base import Tokenizer

SPLITS = ("train", "val", "test")


@DATASETS.base_class
class SeqDataModule(L.LightningDataModule):
    """Base class of the `datasets` registry."""

    def __init__(self, num_workers: NonNegativeInt = 0):
        super().__init__()
        self.num_workers = num_workers
        self.tokenizers: dict[str, Tokenizer] | None = None
        self._read: dict[str, Any] = {}
        self._encoded: dict[str, Any] = {}

    # --- what a dataset defines ------------------------------------------------------------------
    def split_source(self, split: str) -> Any:
        """Where a split comes from (a path, a pair of paths, ...), or None if the data has no such split."""
        raise NotImplementedError

    def read_split(self, split: str) -> Any:
        """The split's raw examples, read from `split_source(split)`."""
        raise NotImplementedError

    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """Tokenizers by side, fitted on the training split (`config`: the tokenizer group)."""
        raise NotImplementedError

    def check_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        """ConfigError unless these tokenizers have the sides and special tokens the data needs."""

    def encode_split(self, split: str) -> Any:
        """The split's examples as ids, with the tokenizers in `self.tokenizers`."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------------
    @property
    def has_test(self) -> bool:
        return self.split_source("test") is not None

    def describe(self, split: str) -> str:
        """Where the split comes from, for error messages."""
        source = self.split_source(split)
        return ", ".join(map(str, source)) if isinstance(source, tuple) else str(source)

    def read_all(self) -> None:
        """Read every split through once now, so that a missing or malformed file fails before training."""
        for split in SPLITS:
            if self.split_source(split) is not None:
                for _ in self.read(split):
                    pass

    def setup(self, stage: str | None = None) -> None:
        # Encoding every split the stage needs now, train first, makes a split too small for one
        # batch fail before training, and the same way whichever loader Lightning asks for first.
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage or "", SPLITS)
        for split in wanted:
            if self.tokenizers is not None and self.split_source(split) is not None:
                self.encoded(split)

    def read(self, split: str) -> Any:
        """The split's raw examples (read once; a reader object that streams its file for big data)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        if self.split_source(split) is None:
            raise ConfigError(f"dataset '{self.registered_name}' has no {split} split; set data.{split}=<file>")
        if split not in self._read:
            self._read[split] = self.read_split(split)
        return self._read[split]

    def build_tokenizers(
        self, config: dict[str, Any], given: dict[str, Tokenizer] | None = None
    ) -> dict[str, Tokenizer]:
        """Tokenizers fitted on the training split; the sides in `given` (a checkpoint's, when a run
        starts from one) are used as they are."""
        given = given or {}
        tokenizers = {side: given.get(side, fitted) for side, fitted in self.fit_tokenizers(config).items()}
        self.use_tokenizers(tokenizers)
        return tokenizers

    def use_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        """Use already-fitted tokenizers (e.g. from a checkpoint)."""
        self.check_tokenizers(tokenizers)
        self.tokenizers = dict(tokenizers)
        self._encoded.clear()

    def encoded(self, split: str) -> Any:
        """The split's examples as ids, encoded once per set of tokenizers."""
        if self.tokenizers is None:
            raise RuntimeError("no tokenizers: call build_tokenizers(config) or use_tokenizers(...) first")
        if split not in self._encoded:
            self._encoded[split] = self.encode_split(split)
        return self._encoded[split]


class ResumableLoader(DataLoader):
    """A DataLoader whose place within the epoch survives a checkpoint: Lightning saves its
    `state_dict` (the batches it has handed out this epoch) with the fit loop and, on resume, gives it
    back through `load_state_dict`; the next epoch's iteration then starts after those batches, by
    telling the sampler or stream (`source.start_at`) where to begin, without loading what it skips.

    Each loader draws its workers' base seed from a generator of its own, so making an iterator
    never consumes the global random state that dropout draws from (a resumed run must see the
    same random numbers as an uninterrupted one)."""

    def __init__(self, dataset: Any, source: Any, **options: Any):
        super().__init__(dataset, generator=torch.Generator().manual_seed(TRAIN_SEED), **options)
        self.source = source
        self._handed_out = 0
        self._resume_at = 0

    def __iter__(self):
        start, self._resume_at = self._resume_at, 0
        self.source.start_at(start)
        self._handed_out = start
        for batch in super().__iter__():
            self._handed_out += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches": self._handed_out}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = int(state["batches"])


class Examples(Dataset):
    """A split's encoded examples, indexable (what DataLoader workers receive, pickled)."""

    def __init__(self, examples: Sequence[Any]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.examples[index]  # the example's position in its split travels with it


class TokenBudgetData(SeqDataModule):
    """Datasets of examples with a length, batched in length buckets of at most `max_tokens` padded
    tokens. Subclasses give `lengths(encoded)` and `collate()`; `encode_split` returns a sequence of
    examples (whatever the collate object takes)."""

    def __init__(
        self, max_tokens: PositiveInt, val_max_tokens: PositiveInt | None = None, num_workers: NonNegativeInt = 0
    ):
        super().__init__(num_workers)
        self.max_tokens = max_tokens
        self.val_max_tokens = val_max_tokens or max_tokens
        self._samplers: dict[str, TokenBatchSampler] = {}

    def encoded(self, split: str) -> Sequence[Any]:
        examples = super().encoded(split)
        if not examples:
            raise DataError(self.describe(split), f"the {split} split has no usable examples; at least one is needed")
        return examples

    def lengths(self, examples: Sequence[Any]) -> list[int]:
        """The padded length each example needs."""
        raise NotImplementedError

    def collate(self) -> Any:
        """A picklable callable: a list of (index, example) -> one batch."""
        raise NotImplementedError

    def use_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        super().use_tokenizers(tokenizers)
        self._samplers.clear()  # lengths change with the tokenizers

    def sampler(self, split: str) -> TokenBatchSampler:
        """The split's batch sampler, made once; Lightning sets the training sampler's epoch."""
        if split not in self._samplers:
            budget = self.max_tokens if split == "train" else self.val_max_tokens
            self._samplers[split] = TokenBatchSampler(
                self.lengths(self.encoded(split)), budget, shuffle=split == "train", seed=TRAIN_SEED
            )
        return self._samplers[split]

    def loader(self, split: str) -> DataLoader:
        sampler = self.sampler(split)
        return ResumableLoader(
            Examples(self.encoded(split)),
            sampler,
            batch_sampler=sampler,
            collate_fn=self.collate(),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader | list:
        """An empty list when there is no test split: Lightning then runs no test."""
        return self.loader("test") if self.has_test else []
