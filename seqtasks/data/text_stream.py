"""Datasets for language models: one text file read as a token stream.

`text_file` takes any UTF-8 file; named datasets (`tinyshakespeare`) know their file and download it
into the data root when it is missing (`seqtasks.data.catalogue`; data.download=false turns that off).
Split: the first (1 - val_fraction) of the characters trains, the rest validates (as char-rnn and
nanoGPT do), so validation text is never seen in training.

The file is streamed, never held in memory: one pass counts its characters, the tokenizer is
fitted on the training part's lines, and each part is tokenised once into a memory-mapped file of
ids (`seqtasks.data.token_cache`), keyed by the file's content hash and the tokenizer, so a later
run of the same text starts at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from torch.utils.data import DataLoader

from seqtasks.configuration.registry import DATASETS, TOKENIZERS
from seqtasks.configuration.validation import PositiveInt, Range
from seqtasks.data.base import ResumableLoader, SeqDataModule
from seqtasks.data.catalogue import FILES, locate
from seqtasks.data.stream import StreamBatches, StreamOrder, steps_per_row
from seqtasks.data.text import check_is_file, iter_text
from seqtasks.data.token_cache import TokenCache, file_digest, key_of
from seqtasks.data.tsv import iter_tsv_column
from seqtasks.errors import ConfigError, DataError
from seqtasks.tensors import rank_and_world
from seqtasks.tokenizers.base import Tokenizer

Fraction = Annotated[float, Range(low=0, high=1, low_open=True, high_open=True)]


@dataclass(frozen=True)
class TextPart:
    """Characters [start, end) of a text file, streamed."""

    path: Path
    start: int
    end: int
    text_column: str | None = None

    def chunks(self) -> Iterator[str]:
        """The part's text, a line (or the piece of one at either end) at a time."""
        position = 0
        for text in text_of(self.path, self.text_column):
            if position + len(text) > self.start and position < self.end:
                yield text[max(self.start - position, 0) : self.end - position]
            position += len(text)
            if position >= self.end:
                return

    def __len__(self) -> int:
        return self.end - self.start


def text_of(path: Path, text_column: str | None) -> Iterator[str]:
    """A file's text a line at a time: every line, or one TSV column's text with a line per row."""
    if text_column is None:
        return iter_text(path)
    return (text + "\n" for text in iter_tsv_column(path, text_column))


@DATASETS.register("text_file")
class TextStreamData(SeqDataModule):
    """Any UTF-8 text file as a stream for a language model (data.path=...)."""

    def __init__(
        self,
        path: str | None = None,
        root: str | None = None,
        download: bool = True,
        batch_size: PositiveInt = 64,
        seq_len: PositiveInt = 128,
        val_fraction: Fraction = 0.1,
        val_batch_size: PositiveInt | None = None,
        cache_dir: str | None = None,
        text_column: str | None = None,
        shift_each_epoch: bool = False,
    ):
        super().__init__()
        self.path = Path(path) if path else None
        self.text_column = text_column
        self.root = root
        self.download = download
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.val_fraction = val_fraction
        self.val_batch_size = val_batch_size or batch_size
        self.shift_each_epoch = shift_each_epoch
        self.cache = TokenCache(cache_dir)
        self._digest: str | None = None

    def text_path(self) -> Path:
        if self.path is None:
            raise ConfigError("dataset 'text_file' needs data.path=<a UTF-8 text file>")
        if not self.path.exists() and self.path.as_posix() in FILES:  # e.g. sst2/train.tsv
            return locate(self.path, self.root, self.download)
        return self.path

    def split_source(self, split: str) -> Path | None:
        return None if split == "test" else self.text_path()

    def digest(self) -> str:
        """The text file's content hash (computed once)."""
        if self._digest is None:
            whole = file_digest(self.text_path())
            self._digest = whole if self.text_column is None else key_of("column", whole, self.text_column)
        return self._digest

    def read_split(self, split: str) -> TextPart:
        """The first (1 - val_fraction) of the characters for 'train', the rest for 'val'; reading
        the file once checks it (UTF-8, not empty) and counts them."""
        path = self.text_path()
        check_is_file(path)
        total = self.cache.json(
            key_of("characters", self.digest()), lambda: sum(len(t) for t in text_of(path, self.text_column))
        )
        cut = int(total * (1.0 - self.val_fraction))
        start, end = (0, cut) if split == "train" else (cut, total)
        return TextPart(path, start, end, self.text_column)

    def read_all(self) -> None:
        """Reading the text once (to count its characters) checks it; the parts are not read again."""
        self.read("train")

    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """Fit the tokenizer on the training part only (cached with the ids); the task gets it as 'text'."""
        part = self.read("train")
        state = self.cache.json(
            key_of("tokenizer", self.digest(), part.start, part.end, config),
            lambda: TOKENIZERS.build(config, "tokenizer").fit(part.chunks()).state(),
        )
        return {"text": Tokenizer.from_state(state)}

    def encode_split(self, split: str) -> np.ndarray:
        """The split's token ids (N,) as a memory map; too few for one batch on every rank fails
        naming the split."""
        part, tokenizer = self.read(split), self.tokenizers["text"]
        key = key_of("ids", self.digest(), part.start, part.end, tokenizer.state())
        tokens = self.cache.ids(
            key,
            lambda: (tokenizer.encode(chunk) for chunk in part.chunks()),
            len(tokenizer),
            f"{self.text_path()} ({split} split)",
        )
        rows = self.batch_size if split == "train" else self.val_batch_size
        _, world = rank_and_world()
        shifted = self.shifted(split)
        if steps_per_row(len(tokens), rows * world, self.seq_len, shifted) == 0:
            spare = f" + {self.seq_len - 1} for the shift" if shifted else ""
            needed = rows * world * self.seq_len + 1 + (self.seq_len - 1 if shifted else 0)
            raise DataError(
                self.text_path(),
                f"the {split} split has {len(tokens)} tokens, too few for one batch: {rows * world} rows x "
                f"{self.seq_len} steps + 1{spare} = {needed} needed; lower data.batch_size "
                "(or data.val_batch_size) or data.seq_len",
            )
        return tokens

    def shifted(self, split: str) -> bool:
        """Whether the split's rows start at a new offset each epoch: training's, with shift_each_epoch."""
        return self.shift_each_epoch and split == "train"

    def _stream(self, split: str, batch_size: int) -> DataLoader:
        # Batches in stream order, never shuffled, which would break the hidden-state carry between
        # them; training's rows may start at a new offset each epoch (shift_each_epoch).
        stream = StreamBatches(self.encoded(split), batch_size, self.seq_len, shift_each_epoch=self.shifted(split))
        order = StreamOrder(stream)
        return ResumableLoader(stream, order, sampler=order, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._stream("train", self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._stream("val", self.val_batch_size)


@DATASETS.register("tinyshakespeare")
class TinyShakespeare(TextStreamData):
    """Tiny Shakespeare (char-rnn's input.txt, 1.1M characters)."""

    def text_path(self) -> Path:
        return locate("tinyshakespeare/input.txt", self.root, self.download)
