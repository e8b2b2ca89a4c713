"""Datamodules for many-to-one tasks: (text, label) examples -> token-budget batches.

`LabelledTextData` does the shared work (tokenizers fitted on the training split, labels as a
`labels` tokenizer, length buckets, encoding each split once); a dataset only says where its
examples come from (`examples(split)`). `names`: surnames -> language of origin, de-duplicated and
split 80/10/10 by `seqtasks.data.names`; `sst2`: sentences -> sentiment (GLUE TSV or Kim's
`<label> <sentence>` lines). Both take `test=<file>` to score a model on data it never saw.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from seqtasks.data.batching import TRAIN_SEED, TokenBatchSampler, pad_sequences
from seqtasks.data.files import default_root, split_paths
from seqtasks.data.names import deduplicate, read_names_by_language, split_names
from seqtasks.data.tsv import read_label_first_lines, read_labelled_tsv
from seqtasks.errors import ConfigError, DataError
from seqtasks.registry import DATASETS, TOKENIZERS
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.labels import LabelVocabulary


def read_labelled_file(path: str | Path, text_column: str, label_column: str) -> list[tuple[str, str]]:
    """(text, label) pairs: a `.tsv` file with a header naming its columns, else `<label> <text>` lines."""
    if Path(path).suffix == ".tsv":
        return read_labelled_tsv(path, text_column, label_column)
    return read_label_first_lines(path)


@dataclass
class ClassificationBatch:
    tokens: Tensor  # (B, T) long, padded with <pad>
    lengths: Tensor  # (B,) long, >= 1
    labels: Tensor  # (B,) long
    texts: list[str]
    indices: list[int]  # position of each example in its split

    def __len__(self) -> int:
        return len(self.indices)

    def to(self, device, non_blocking: bool = False) -> ClassificationBatch:
        return dataclasses.replace(self, **{name: getattr(self, name).to(device, non_blocking=non_blocking)
                                            for name in ("tokens", "lengths", "labels")})


class LabelledTextData(L.LightningDataModule):
    """Base of the (text, label) datasets: subclasses implement `examples(split)`."""

    has_test = True

    def __init__(self, max_tokens: int = 2000, num_workers: int = 0):
        super().__init__()
        self.max_tokens = max_tokens
        self.num_workers = num_workers
        self.tokenizers: dict[str, Tokenizer] | None = None
        self._encoded: dict[str, tuple[list[list[int]], list[int], list[str]]] = {}

    def examples(self, split: str) -> list[tuple[str, str]]:
        """(text, label) pairs of 'train', 'val' or 'test'."""
        raise NotImplementedError

    def describe(self, split: str) -> str:
        """Where the split comes from, for error messages."""
        return split

    def build_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        train = self.examples("train")
        tokenizers = {"text": TOKENIZERS.build(config).fit([text for text, _ in train]),
                      "labels": LabelVocabulary().fit([label for _, label in train])}
        self.use_tokenizers(tokenizers)
        return tokenizers

    def use_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        if tokenizers["text"].vocab.pad_id is None:
            raise ConfigError("classification needs a text tokenizer with a <pad> token")
        self.tokenizers = dict(tokenizers)
        self._encoded.clear()

    def encoded(self, split: str) -> tuple[list[list[int]], list[int], list[str]]:
        if split not in self._encoded:
            text_tokenizer, labels = self.tokenizers["text"], self.tokenizers["labels"]
            ids, label_ids, texts = [], [], []
            for position, (text, label) in enumerate(self.examples(split)):
                try:
                    label_ids.extend(labels.encode(label))
                except KeyError as error:
                    raise DataError(self.describe(split), f"example {position + 1}: {error.args[0]}") from None
                ids.append(text_tokenizer.encode(text) or [text_tokenizer.vocab.unk_id])  # never empty: packing
                texts.append(text)
            self._encoded[split] = (ids, label_ids, texts)
        return self._encoded[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ids, label_ids, texts = self.encoded(split)
        sampler = TokenBatchSampler([len(x) for x in ids], self.max_tokens, shuffle=shuffle, seed=TRAIN_SEED)
        if shuffle and self.trainer is not None:
            sampler.set_epoch(self.trainer.current_epoch)
        pad = self.tokenizers["text"].vocab.pad_id

        def collate(rows: list[int]) -> ClassificationBatch:
            tokens, lengths = pad_sequences([ids[i] for i in rows], pad)
            return ClassificationBatch(tokens, lengths, torch.tensor([label_ids[i] for i in rows]),
                                       [texts[i] for i in rows], list(rows))

        return DataLoader(range(len(ids)), batch_sampler=sampler, collate_fn=collate, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


@DATASETS.register("names")
class NamesData(LabelledTextData):
    """Surnames -> language of origin (18 languages), de-duplicated, stratified 80/10/10 split.

    `test=<file.tsv>` (header `name<TAB>language`) replaces the test split, e.g. to evaluate on new names."""

    def __init__(self, root: str | None = None, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 test: str | None = None, **options: Any):
        super().__init__(**options)
        self.directory = (Path(root).expanduser() if root else default_root()) / "names" / "by_language"
        self.seed = seed
        self.fractions = tuple(fractions)
        self.test = test
        self._splits: dict[str, list[tuple[str, str]]] | None = None

    def examples(self, split: str) -> list[tuple[str, str]]:
        if split == "test" and self.test is not None:
            return read_labelled_file(self.test, "name", "language")
        if self._splits is None:
            pairs = deduplicate(read_names_by_language(self.directory))
            self._splits = split_names(pairs, self.fractions, self.seed)
        return self._splits[split]

    def describe(self, split: str) -> str:
        if split == "test" and self.test is not None:
            return str(self.test)
        return f"{self.directory} ({split} split)"


@DATASETS.register("sst2")
class SST2Data(LabelledTextData):
    """Stanford Sentiment Treebank, binary (0 negative, 1 positive): GLUE's phrase-level `train.tsv`
    (67k phrases and sentences) or Kim's sentence-level `sentence_level/stsa.binary.train`; selection
    on the 872 `dev.tsv` sentences. The labelled test split is not distributed: `test` is None
    unless given a file. Relative paths are under <root>/sst2."""

    def __init__(self, root: str | None = None, train: str = "train.tsv", val: str = "dev.tsv",
                 test: str | None = None, text_column: str = "sentence", label_column: str = "label",
                 **options: Any):
        super().__init__(**options)
        directory = (Path(root).expanduser() if root else default_root()) / "sst2"
        self.files = split_paths(directory, train, val, test)
        self.has_test = test is not None
        self.text_column = text_column
        self.label_column = label_column
        self._examples: dict[str, list[tuple[str, str]]] = {}

    def examples(self, split: str) -> list[tuple[str, str]]:
        if self.files[split] is None:
            raise ConfigError("sst2 has no test split (its labels are not distributed); set data.test=<file>")
        if split not in self._examples:
            self._examples[split] = read_labelled_file(self.files[split], self.text_column, self.label_column)
        return self._examples[split]

    def describe(self, split: str) -> str:
        return str(self.files[split])
