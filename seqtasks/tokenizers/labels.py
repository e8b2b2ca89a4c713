"""Class labels as a tiny tokenizer: the labels seen in training, sorted, one id each. Fitted on the
training split and carried in the checkpoint like any tokenizer, so label ids flow forward to the
model (its number of classes) and back to names at predict time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from seqtasks.configuration.registry import TOKENIZERS
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.vocab import Vocab


@TOKENIZERS.register("labels")
class LabelVocabulary(Tokenizer):
    """Class labels seen in training (sorted), one id each; no special tokens."""

    def __init__(self):
        self.vocab = Vocab([])

    def fit(self, texts: Iterable[str]) -> LabelVocabulary:
        self.vocab = Vocab(sorted(set(texts)))
        return self

    def encode(self, text: str) -> list[int]:
        """[id] of a known label; KeyError naming the label for one training never saw."""
        if text not in self.vocab:
            raise KeyError(f"label {text!r} was not seen in training (known: {', '.join(self.vocab.tokens)})")
        return [self.vocab.index[text]]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.vocab.tokens[i] for i in ids)

    def state(self) -> dict[str, Any]:
        return {"name": "labels", "vocab": self.vocab.tokens}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> LabelVocabulary:
        labels = cls()
        labels.vocab = Vocab(state["vocab"])
        return labels
