"""Datamodule for sequence tagging (many-to-many, synced): one tag per syntactic word of a CoNLL-U
sentence, e.g. UD English EWT universal (UPOS) or Penn (XPOS) part-of-speech tags.

Sentences come from `seqtasks.data.conllu.read_conllu`; only the integer-ID words are tagged
(multiword-token ranges such as `3-4` and empty nodes such as `8.1` are skipped, comments ignored).

Three tokenizers are fitted on the training split and travel in the checkpoint:
- `words`: the word vocabulary over training forms (the `tokenizer` config group, which must be
  `tokenizer=word`: its options, e.g. lowercase, min_frequency, max_size, apply). A form out of this
  vocabulary is <unk> and flagged `unseen`; with the defaults (case-sensitive, min_frequency 1, no
  max_size) that is exactly "never seen in training", and `acc_unseen` is the accuracy on those words.
- `chars`: characters of the training forms (`CharTokenizer`), for the character-level word encoder.
- `tags`: the tags of the chosen column seen in training (`LabelVocabulary`).

A tag training never saw (or `_`, no tag) in a val/test file raises DataError naming the file and
the word's line: the model could never predict it, and such a file is usually the wrong file or
column (UD EWT's dev/test tags all occur in train, for UPOS and XPOS alike).

Batches hold whole sentences, length-bucketed within a budget of `max_tokens` padded words. The
characters are those of the batch's distinct forms only (each computed once per batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from seqtasks.data.base import TokenBudgetData
from seqtasks.data.batching import TensorBatch, pad_sequences
from seqtasks.data.conllu import Sentence, read_conllu
from seqtasks.data.files import dataset_directory, split_paths
from seqtasks.errors import ConfigError, DataError
from seqtasks.registry import DATASETS, TOKENIZERS
from seqtasks.tensors import lengths_mask
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.char import CharTokenizer
from seqtasks.tokenizers.labels import LabelVocabulary
from seqtasks.validation import NonNegativeInt, PositiveInt

IGNORE = -100  # tag id of padded positions (cross_entropy's ignore_index)


@dataclass
class EncodedSentence:
    """One sentence's words as ids: the model's input, and its gold tags where known."""

    forms: list[str]
    word_ids: list[int]  # ids in the `words` vocabulary (<unk> for unseen words)
    char_ids: list[list[int]]  # per word, ids in the `chars` vocabulary
    unseen: list[bool]  # word out of the `words` vocabulary
    tag_ids: list[int] | None = None  # gold tags (None when tagging new text)


@dataclass
class TaggingBatch(TensorBatch):
    """B sentences of at most T words; U distinct word forms of at most C characters."""

    words: Tensor  # (B, T) long word ids, padded with the words' <pad>
    lengths: Tensor  # (B,) long, words per sentence, >= 1
    chars: Tensor  # (U, C) long char ids of each distinct form in the batch, padded with the chars' <pad>
    char_lengths: Tensor  # (U,) long, characters per form, >= 1
    forms: Tensor  # (B, T) long index into `chars` of each word's form (0 at padding)
    tags: Tensor  # (B, T) long gold tag ids, IGNORE (-100) at padding (all IGNORE if unknown)
    unseen: Tensor  # (B, T) bool, word not in the training vocabulary (False at padding)
    indices: list[int]  # position of each sentence in its split

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def mask(self) -> Tensor:
        """(B, T) bool, True at real words."""
        return lengths_mask(self.lengths, self.words.shape[1])

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())


def word_id(words: Tokenizer, form: str) -> int:
    """The id of one form in the word vocabulary; <unk> when it is not one known word."""
    ids = words.encode(form)
    return ids[0] if len(ids) == 1 else words.vocab.unk_id


def encode_sentence(
    forms: Sequence[str], words: Tokenizer, chars: Tokenizer, cache: dict[str, tuple[int, list[int]]] | None = None
) -> EncodedSentence:
    """Word ids, char ids and unseen flags of one sentence's forms (cache: form -> (word id, char ids))."""
    cache = {} if cache is None else cache
    word_ids, char_ids = [], []
    for form in forms:
        if form not in cache:
            cache[form] = (word_id(words, form), chars.encode(form) or [chars.vocab.unk_id])
        word, characters = cache[form]
        word_ids.append(word)
        char_ids.append(characters)
    unk = words.vocab.unk_id
    return EncodedSentence(list(forms), word_ids, char_ids, [w == unk for w in word_ids])


def collate(sentences: Sequence[EncodedSentence], word_pad: int, char_pad: int, indices: Sequence[int]) -> TaggingBatch:
    """Encoded sentences (each >= 1 word) -> one padded batch; the distinct forms' characters once each."""
    words, lengths = pad_sequences([s.word_ids for s in sentences], word_pad)  # (B, T), (B,)
    B, T = words.shape
    tags = torch.full((B, T), IGNORE, dtype=torch.long)
    unseen = torch.zeros(B, T, dtype=torch.bool)
    forms = torch.zeros(B, T, dtype=torch.long)
    distinct: dict[str, int] = {}
    char_ids: list[list[int]] = []
    for row, sentence in enumerate(sentences):
        n = len(sentence.word_ids)
        if sentence.tag_ids is not None:
            tags[row, :n] = torch.tensor(sentence.tag_ids, dtype=torch.long)
        unseen[row, :n] = torch.tensor(sentence.unseen, dtype=torch.bool)
        positions = []
        for form, characters in zip(sentence.forms, sentence.char_ids, strict=True):
            if form not in distinct:
                distinct[form] = len(char_ids)
                char_ids.append(characters)
            positions.append(distinct[form])
        forms[row, :n] = torch.tensor(positions, dtype=torch.long)
    chars, char_lengths = pad_sequences(char_ids, char_pad)  # (U, C), (U,)
    return TaggingBatch(words, lengths, chars, char_lengths, forms, tags, unseen, list(indices))


class CollateSentences:
    """[(index, EncodedSentence)] -> TaggingBatch (see `collate`)."""

    def __init__(self, word_pad: int, char_pad: int):
        self.word_pad, self.char_pad = word_pad, char_pad

    def __call__(self, examples: Sequence[tuple[int, EncodedSentence]]) -> TaggingBatch:
        return collate(
            [sentence for _, sentence in examples], self.word_pad, self.char_pad, [index for index, _ in examples]
        )


@DATASETS.register("conllu")
class TaggingData(TokenBudgetData):
    """CoNLL-U files -> one tag (UPOS or XPOS) per word; defaults: UD English EWT under <root>/ud_english_ewt.

    Relative file paths are under <root>/ud_english_ewt, absolute ones are used as given, so
    `data.test=/some/file.conllu` scores a model on any CoNLL-U file; `test: null` means no test split."""

    def __init__(
        self,
        root: str | None = None,
        train: str = "en_ewt-ud-train.conllu",
        val: str = "en_ewt-ud-dev.conllu",
        test: str | None = "en_ewt-ud-test.conllu",
        column: Literal["upos", "xpos"] = "upos",
        max_tokens: PositiveInt = 1000,
        val_max_tokens: PositiveInt | None = None,
        num_workers: NonNegativeInt = 0,
    ):
        super().__init__(max_tokens, val_max_tokens, num_workers)
        self.files = split_paths(dataset_directory(root, "ud_english_ewt"), train, val, test)
        self.column = column

    def split_source(self, split: str) -> Path | None:
        return self.files[split]

    def read_split(self, split: str) -> list[Sentence]:
        """The CoNLL-U sentences of 'train', 'val' or 'test'."""
        return read_conllu(self.files[split])

    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """Fit `words` (from the `tokenizer` group, which must be a word tokenizer), `chars` and `tags`
        on the training split."""
        if config.get("name") != "word":
            raise ConfigError(
                f"tagging needs tokenizer=word for its word vocabulary, got tokenizer={config.get('name')}"
            )
        sentences = self.read("train")
        forms = [word.form for sentence in sentences for word in sentence.words]
        tags = [tag for sentence in sentences for tag in self.gold_tags("train", sentence)]
        return {
            "words": TOKENIZERS.build(config, "tokenizer").fit(forms),
            "chars": CharTokenizer().fit(forms),
            "tags": LabelVocabulary().fit(tags),
        }

    def check_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        check_tokenizers(tokenizers)

    def gold_tags(self, split: str, sentence: Sentence) -> list[str]:
        """The sentence's tags in the chosen column; `_` (no tag) fails naming the word's line."""
        tags = []
        for position, token in enumerate(sentence.lines):
            if not token.is_word:
                continue
            tag = getattr(token, self.column)
            if tag == "_":
                raise DataError(
                    self.files[split],
                    f"word {token.id} ({token.form!r}) has no {self.column.upper()} "
                    f"tag ('_'); every word needs one (data.column: upos | xpos)",
                    line=self.line_of(sentence, position),
                )
            tags.append(tag)
        return tags

    @staticmethod
    def line_of(sentence: Sentence, position: int) -> int | None:
        """1-based file line of sentence.lines[position]: its comments come first, then its token lines."""
        return None if sentence.line is None else sentence.line + len(sentence.comments) + position

    def encode_split(self, split: str) -> list[EncodedSentence]:
        words, chars, tags = self.tokenizers["words"], self.tokenizers["chars"], self.tokenizers["tags"]
        cache: dict[str, tuple[int, list[int]]] = {}
        encoded = []
        for sentence in self.read(split):
            item = encode_sentence([w.form for w in sentence.words], words, chars, cache)
            item.tag_ids = []
            gold = iter(self.gold_tags(split, sentence))
            for position, token in enumerate(sentence.lines):
                if not token.is_word:
                    continue
                tag = next(gold)
                if tag not in tags.vocab:
                    raise DataError(
                        self.files[split],
                        f"word {token.id} ({token.form!r}): "
                        f"{self.column.upper()} tag {tag!r} was not seen in training (known: "
                        f"{', '.join(tags.vocab.tokens)})",
                        line=self.line_of(sentence, position),
                    )
                item.tag_ids.append(tags.vocab.index[tag])
            encoded.append(item)
        return encoded

    def lengths(self, examples: Sequence[EncodedSentence]) -> list[int]:
        return [len(s.word_ids) for s in examples]

    def collate(self) -> CollateSentences:
        return CollateSentences(self.tokenizers["words"].vocab.pad_id, self.tokenizers["chars"].vocab.pad_id)


def check_tokenizers(tokenizers: dict[str, Tokenizer]) -> None:
    """Tagging needs `words` (with <pad> and <unk>), `chars` (with <pad> and <unk>) and `tags`."""
    missing = {"words", "chars", "tags"} - set(tokenizers)
    if missing:
        raise ConfigError(f"tagging needs the tokenizers words, chars and tags; missing: {', '.join(sorted(missing))}")
    for side in ("words", "chars"):
        vocab = tokenizers[side].vocab
        if vocab.pad_id is None or vocab.unk_id is None:
            raise ConfigError(f"tagging needs a {side} tokenizer with <pad> and <unk> tokens")
