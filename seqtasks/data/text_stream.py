"""Datasets for language models: one text file read as a character stream.

`text_file` takes any UTF-8 file; named datasets (`tinyshakespeare`) know their file and URL.
Split: the first (1 - val_fraction) of the text trains, the rest validates (as char-rnn and
nanoGPT do), so validation text is never seen in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from seqtasks.data.base import SeqDataModule
from seqtasks.data.files import RemoteFile
from seqtasks.data.stream import StreamBatches, steps_per_row
from seqtasks.data.text import read_text
from seqtasks.errors import ConfigError, DataError
from seqtasks.registry import DATASETS, TOKENIZERS
from seqtasks.tensors import rank_and_world
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.validation import PositiveInt, Range

Fraction = Annotated[float, Range(low=0, high=1, low_open=True, high_open=True)]


@DATASETS.register("text_file")
class TextStreamData(SeqDataModule):
    """Any UTF-8 text file as a stream for a language model (data.path=...)."""

    def __init__(
        self,
        path: str | None = None,
        root: str | None = None,
        download: bool = False,
        batch_size: PositiveInt = 64,
        seq_len: PositiveInt = 128,
        val_fraction: Fraction = 0.1,
        val_batch_size: PositiveInt | None = None,
    ):
        super().__init__()
        self.path = Path(path) if path else None
        self.root = root
        self.download = download
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.val_fraction = val_fraction
        self.val_batch_size = val_batch_size or batch_size

    def text_path(self) -> Path:
        if self.path is None:
            raise ConfigError("dataset 'text_file' needs data.path=<a UTF-8 text file>")
        return self.path

    def split_source(self, split: str) -> Path | None:
        return None if split == "test" else self.text_path()

    def read_split(self, split: str) -> str:
        """The first (1 - val_fraction) of the text for 'train', the rest for 'val'."""
        if "text" not in self._read:
            self._read["text"] = read_text(self.text_path())
        text = self._read["text"]
        cut = int(len(text) * (1.0 - self.val_fraction))
        return text[:cut] if split == "train" else text[cut:]

    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """Fit the tokenizer on the training part only; the task gets it by name 'text'."""
        return {"text": TOKENIZERS.build(config, "tokenizer").fit([self.read("train")])}

    def encode_split(self, split: str) -> Tensor:
        """The split's token ids (N,); too few for one batch on every rank fails naming the split."""
        tokens = torch.tensor(self.tokenizers["text"].encode(self.read(split)), dtype=torch.long)
        rows = self.batch_size if split == "train" else self.val_batch_size
        _, world = rank_and_world()
        if steps_per_row(len(tokens), rows * world, self.seq_len) == 0:
            raise DataError(
                self.text_path(),
                f"the {split} split has {len(tokens)} tokens, too few for one batch: "
                f"{rows * world} rows x {self.seq_len} steps + 1 = {rows * world * self.seq_len + 1} "
                f"needed; lower data.batch_size (or data.val_batch_size) or data.seq_len",
            )
        return tokens

    def _stream(self, split: str, batch_size: int) -> DataLoader:
        # batch_size=None: the dataset yields whole batches in stream order (no shuffling, which
        # would break the hidden-state carry between batches).
        return DataLoader(StreamBatches(self.encoded(split), batch_size, self.seq_len), batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._stream("train", self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._stream("val", self.val_batch_size)


@DATASETS.register("tinyshakespeare")
class TinyShakespeare(TextStreamData):
    """Tiny Shakespeare (char-rnn's input.txt, 1.1M characters)."""

    file = RemoteFile(
        "tinyshakespeare/input.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    )

    def text_path(self) -> Path:
        return self.file.locate(self.root, self.download)
