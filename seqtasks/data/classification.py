"""Datamodules for many-to-one tasks: (text, label) examples -> token-budget batches.

`LabelledTextData` does the shared work (tokenizers fitted on the training split, labels as a
`labels` tokenizer, encoding each split once); a dataset only says where its examples come from
(`split_source`, `read_split`). `names`: surnames -> language of origin, de-duplicated and split
80/10/10 by `seqtasks.data.names`; `sst2`: sentences -> sentiment (GLUE TSV or Kim's
`<label> <sentence>` lines). Both take `test=<file>` to score a model on data it never saw, and
download their files into the data root when missing (`seqtasks.data.catalogue`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqtasks.configuration.registry import DATASETS, TOKENIZERS
from seqtasks.configuration.validation import Probability
from seqtasks.data.base import TokenBudgetData
from seqtasks.data.batching import TensorBatch, pad_sequences
from seqtasks.data.catalogue import locate, locate_folder
from seqtasks.data.files import dataset_directory, split_paths
from seqtasks.data.names import deduplicate, read_names_by_language, split_names
from seqtasks.data.ragged import Ragged, RaggedBuilder
from seqtasks.data.tsv import iter_label_first_lines, iter_labelled_tsv
from seqtasks.errors import ConfigError, DataError
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.labels import LabelVocabulary


def read_labelled_file(path: str | Path, text_column: str, label_column: str) -> list[tuple[str, str]]:
    return list(LabelledFile(Path(path), text_column, label_column))


class LabelledFile:
    """(text, label) pairs, streamed anew at each iteration: a `.tsv` file with a header naming its
    columns, else `<label> <text>` lines."""

    def __init__(self, path: Path, text_column: str, label_column: str):
        self.path, self.text_column, self.label_column = path, text_column, label_column

    def __iter__(self) -> Iterator[tuple[str, str]]:
        if self.path.suffix == ".tsv":
            return iter_labelled_tsv(self.path, self.text_column, self.label_column)
        return iter_label_first_lines(self.path)


@dataclass
class EncodedLabelled:
    """A split as ids: each example's tokens (a Ragged row) and its label id."""

    tokens: Ragged
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.tokens[i], int(self.labels[i])


@dataclass
class ClassificationBatch(TensorBatch):
    tokens: Tensor  # (B, T) long, padded with <pad>
    lengths: Tensor  # (B,) long, >= 1
    labels: Tensor  # (B,) long
    indices: list[int]  # position of each example in its split

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())


class CollateLabelled:
    """[(index, (token ids, label id))] -> ClassificationBatch."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[tuple[int, tuple[list[int], int]]]) -> ClassificationBatch:
        indices = [index for index, _ in examples]
        tokens, lengths = pad_sequences([ids for _, (ids, _) in examples], self.pad_id)
        return ClassificationBatch(tokens, lengths, torch.tensor([label for _, (_, label) in examples]), indices)


class LabelledTextData(TokenBudgetData):
    """Base of the (text, label) datasets: subclasses implement `split_source` and `read_split`,
    which returns (text, label) pairs."""

    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        train = self.read("train")
        return {
            "text": TOKENIZERS.build(config, "tokenizer").fit(text for text, _ in train),
            "labels": LabelVocabulary().fit(label for _, label in train),
        }

    def check_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        if tokenizers["text"].vocab.pad_id is None:
            raise ConfigError("classification needs a text tokenizer with a <pad> token")

    def encode_split(self, split: str) -> EncodedLabelled:
        text_tokenizer, labels = self.tokenizers["text"], self.tokenizers["labels"]
        tokens, label_ids = RaggedBuilder(), []
        for position, (text, label) in enumerate(self.read(split)):
            try:
                (label_id,) = labels.encode(label)
            except KeyError as error:
                raise DataError(self.describe(split), f"example {position + 1}: {error.args[0]}") from None
            tokens.append(text_tokenizer.encode(text) or [text_tokenizer.vocab.unk_id])  # never empty: packing
            label_ids.append(label_id)
        return EncodedLabelled(tokens.build(), np.asarray(label_ids, dtype=np.int64))

    def lengths(self, examples: EncodedLabelled) -> list[int]:
        return examples.tokens.lengths().tolist()

    def collate(self) -> CollateLabelled:
        return CollateLabelled(self.tokenizers["text"].vocab.pad_id)


NAMES_FOLDER = "names/by_language"  # one <Language>.txt per language, under the data root


@DATASETS.register("names")
class NamesData(LabelledTextData):
    """Surnames -> language of origin (18 languages), de-duplicated, stratified 80/10/10 split.

    `test=<file.tsv>` (header `name<TAB>language`) replaces the test split, e.g. to evaluate on new names.
    A missing <root>/names/by_language folder is downloaded whole; an existing one is read as it is."""

    def __init__(
        self,
        root: str | None = None,
        seed: int = 0,
        fractions: tuple[Probability, Probability, Probability] = (0.8, 0.1, 0.1),
        test: str | None = None,
        download: bool = True,
        **options: Any,
    ):
        super().__init__(**options)
        self.root, self.download = root, download
        self.directory = dataset_directory(root, NAMES_FOLDER)
        self.seed = seed
        self.fractions = tuple(fractions)
        self.test = test
        self._splits: dict[str, list[tuple[str, str]]] | None = None

    def split_source(self, split: str) -> Path:
        return Path(self.test) if split == "test" and self.test is not None else self.directory

    def describe(self, split: str) -> str:
        return str(self.test) if split == "test" and self.test is not None else f"{self.directory} ({split} split)"

    def read_split(self, split: str) -> list[tuple[str, str]]:
        if split == "test" and self.test is not None:
            return read_labelled_file(self.test, "name", "language")
        if self._splits is None:
            directory = locate_folder(NAMES_FOLDER, self.root, self.download)
            self._splits = split_names(deduplicate(read_names_by_language(directory)), self.fractions, self.seed)
        return self._splits[split]


@DATASETS.register("sst2")
class SST2Data(LabelledTextData):
    """Stanford Sentiment Treebank, binary (0 negative, 1 positive): GLUE's phrase-level `train.tsv`
    (67k phrases and sentences) or Kim's sentence-level `sentence_level/stsa.binary.train`; selection
    on the 872 `dev.tsv` sentences. The labelled test split is not distributed: `test` is None
    unless given a file. Relative paths are under <root>/sst2 (the four SST-2 files are downloaded there
    when missing); absolute ones are used as given."""

    def __init__(
        self,
        root: str | None = None,
        train: str = "train.tsv",
        val: str = "dev.tsv",
        test: str | None = None,
        text_column: str = "sentence",
        label_column: str = "label",
        download: bool = True,
        **options: Any,
    ):
        super().__init__(**options)
        self.root, self.download = root, download
        self.files = split_paths(dataset_directory(root, "sst2"), train, val, test)
        self.text_column = text_column
        self.label_column = label_column

    def split_source(self, split: str) -> Path | None:
        return self.files[split]

    def read_split(self, split: str) -> LabelledFile:
        """The split's (text, label) pairs; the dataset's own files are downloaded first when missing."""
        return LabelledFile(locate(self.files[split], self.root, self.download), self.text_column, self.label_column)
