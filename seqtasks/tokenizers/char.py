"""Character tokenizer: one id per Unicode character seen in the training text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from seqtasks.configuration.registry import TOKENIZERS
from seqtasks.configuration.validation import PositiveInt
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.vocab import SPECIALS, Vocab


@TOKENIZERS.register("char")
class CharTokenizer(Tokenizer):
    """Characters; vocabulary built from the training text (specials first, then chars by code point)."""

    def __init__(self, specials: list[str] = SPECIALS, min_frequency: PositiveInt = 1):
        self.specials = list(specials)
        self.min_frequency = min_frequency
        self.vocab = Vocab(self.specials)

    def fit(self, texts: Iterable[str]) -> CharTokenizer:
        counts = Counter()
        for text in texts:
            counts.update(text)
        chars = sorted(c for c, n in counts.items() if n >= self.min_frequency and c not in self.specials)
        self.vocab = Vocab(self.specials + chars)
        return self

    def encode(self, text: str) -> list[int]:
        return [self.vocab.id(c) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        tokens, specials = self.vocab.tokens, set(self.specials)
        return "".join(t for t in (tokens[i] for i in ids) if t not in specials)

    def state(self) -> dict[str, Any]:
        return {
            "name": "char",
            "specials": self.specials,
            "min_frequency": self.min_frequency,
            "vocab": self.vocab.tokens,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> CharTokenizer:
        tokenizer = cls(specials=state["specials"], min_frequency=state["min_frequency"])
        tokenizer.vocab = Vocab(state["vocab"])
        return tokenizer
