"""Vocabulary: tokens <-> ids, with the special tokens first so their ids are stable."""

from __future__ import annotations

from collections.abc import Iterable

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocab:
    def __init__(self, tokens: Iterable[str]):
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")
        self.unk_id = self.index.get(UNK)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def id(self, token: str) -> int:
        found = self.index.get(token, self.unk_id)
        if found is None:
            raise KeyError(f"token {token!r} is not in the vocabulary, which has no {UNK}")
        return found

    @property
    def pad_id(self) -> int | None:
        return self.index.get(PAD)

    @property
    def bos_id(self) -> int | None:
        return self.index.get(BOS)

    @property
    def eos_id(self) -> int | None:
        return self.index.get(EOS)
