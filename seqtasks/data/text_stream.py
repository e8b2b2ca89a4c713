"""Datasets for language models: one text file read as a character stream.

`text_file` takes any UTF-8 file; named datasets (`tinyshakespeare`) know their file and URL.
Split: the first (1 - val_fraction) of the text trains, the rest validates (as char-rnn and
nanoGPT do), so validation text is never seen in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from seqtasks.data.files import RemoteFile
from seqtasks.data.stream import StreamBatches
from seqtasks.data.text import read_text
from seqtasks.errors import ConfigError
from seqtasks.registry import DATASETS, TOKENIZERS
from seqtasks.tokenizers.base import Tokenizer


@DATASETS.register("text_file")
class TextStreamData(L.LightningDataModule):
    """Any UTF-8 text file as a stream for a language model (data.path=...)."""

    def __init__(
        self,
        path: str | None = None,
        root: str | None = None,
        download: bool = False,
        batch_size: int = 64,
        seq_len: int = 128,
        val_fraction: float = 0.1,
        val_batch_size: int | None = None,
    ):
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        self.path = Path(path) if path else None
        self.root = root
        self.download = download
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.val_fraction = val_fraction
        self.val_batch_size = val_batch_size or batch_size
        self.tokenizer: Tokenizer | None = None
        self._text: str | None = None

    def text_path(self) -> Path:
        if self.path is None:
            raise ConfigError("dataset 'text_file' needs data.path=<a UTF-8 text file>")
        return self.path

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = read_text(self.text_path())
        return self._text

    def split(self) -> tuple[str, str]:
        cut = int(len(self.text) * (1.0 - self.val_fraction))
        return self.text[:cut], self.text[cut:]

    def build_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """Fit the tokenizer on the training part only; the task gets it by name 'text'."""
        self.tokenizer = TOKENIZERS.build(config).fit([self.split()[0]])
        return {"text": self.tokenizer}

    def use_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        self.tokenizer = tokenizers["text"]

    def _stream(self, text: str, batch_size: int) -> DataLoader:
        tokens = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        # batch_size=None: the dataset yields whole batches in stream order (no shuffling, which
        # would break the hidden-state carry between batches).
        return DataLoader(StreamBatches(tokens, batch_size, self.seq_len), batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._stream(self.split()[0], self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._stream(self.split()[1], self.val_batch_size)


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
