"""What every tokenizer offers: fit on training text, encode/decode, and a JSON-able state that
the checkpoint carries, so a checkpoint tokenizes on its own."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seqtasks.configuration.registry import TOKENIZERS
from seqtasks.errors import ConfigError
from seqtasks.runtime.atomic import atomic_write
from seqtasks.tokenizers.vocab import Vocab


@TOKENIZERS.base_class
class Tokenizer:
    """Base class: subclasses implement fit, encode and decode."""

    vocab: Vocab

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.vocab)

    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild this fitted tokenizer: options plus learned vocabulary."""
        raise NotImplementedError

    def save(self, directory: Path, name: str) -> list[Path]:
        """Write this tokenizer's files into `directory` (created if missing) and return their paths.
        Here `<name>.json`, the JSON of `state()`; tokenizers with native files (sentencepiece's
        `.model`) write those instead."""
        path = Path(directory) / f"{name}.json"
        with atomic_write(path) as f:
            f.write((json.dumps(self.state(), ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
        return [path]

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        """Rebuild a fitted tokenizer from `state()`, whatever its class. A state is data read from a
        checkpoint, maybe someone else's: one that is not what `state()` writes is a ConfigError."""
        if not isinstance(state, dict) or not isinstance(state.get("name"), str):
            raise ConfigError(f"tokenizer state: expected a mapping with a 'name'; got {str(state)[:80]}")
        state = dict(state)
        tokenizer_class = TOKENIZERS.get(state.pop("name"), path="tokenizer state")
        try:
            return tokenizer_class.restore(state)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:
            name = tokenizer_class.registered_name
            raise ConfigError(f"tokenizer state of '{name}' is malformed: {error!r}") from None

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Tokenizer:
        raise NotImplementedError
