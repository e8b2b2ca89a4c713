"""Word tokenizer: whitespace-separated tokens, vocabulary from the training text.

For already-tokenized text (SST-2 is lowercased and PTB-tokenized; UD forms are words). Words
rarer than `min_frequency`, or beyond the `max_size` most frequent, become <unk>.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from seqtasks.configuration.registry import TOKENIZERS
from seqtasks.configuration.validation import PositiveInt
from seqtasks.errors import ConfigError
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.vocab import SPECIALS, UNK, Vocab


@TOKENIZERS.register("word")
class WordTokenizer(Tokenizer):
    """Whitespace words; the most frequent training words first (ties alphabetical), after the specials."""

    def __init__(
        self,
        lowercase: bool = False,
        min_frequency: PositiveInt = 1,
        max_size: PositiveInt | None = None,
        specials: list[str] = SPECIALS,
    ):
        if UNK not in specials:
            raise ConfigError(f"tokenizer.specials must include {UNK}: unseen words map to it")
        if max_size is not None and max_size <= len(specials):
            raise ConfigError(f"tokenizer.max_size must exceed the {len(specials)} specials, got {max_size}")
        self.lowercase = lowercase
        self.min_frequency = min_frequency
        self.max_size = max_size
        self.specials = list(specials)
        self.vocab = Vocab(self.specials)

    def words(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()

    def fit(self, texts: Iterable[str]) -> WordTokenizer:
        counts = Counter()
        for text in texts:
            counts.update(self.words(text))
        for special in self.specials:
            counts.pop(special, None)
        kept = sorted((w for w, n in counts.items() if n >= self.min_frequency), key=lambda w: (-counts[w], w))
        if self.max_size is not None:
            kept = kept[: self.max_size - len(self.specials)]
        self.vocab = Vocab(self.specials + kept)
        return self

    def encode(self, text: str) -> list[int]:
        return [self.vocab.id(word) for word in self.words(text)]

    def decode(self, ids: Iterable[int]) -> str:
        tokens, specials = self.vocab.tokens, set(self.specials)
        return " ".join(t for t in (tokens[i] for i in ids) if t not in specials)

    def state(self) -> dict[str, Any]:
        return {
            "name": "word",
            "lowercase": self.lowercase,
            "min_frequency": self.min_frequency,
            "max_size": self.max_size,
            "specials": self.specials,
            "vocab": self.vocab.tokens,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> WordTokenizer:
        tokenizer = cls(
            lowercase=state["lowercase"],
            min_frequency=state["min_frequency"],
            max_size=state["max_size"],
            specials=state["specials"],
        )
        tokenizer.vocab = Vocab(state["vocab"])
        return tokenizer
