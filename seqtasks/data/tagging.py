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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from seqtasks.configuration.registry import DATASETS, TOKENIZERS
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt
from seqtasks.data.base import TokenBudgetData
from seqtasks.data.batching import TensorBatch, pad_sequences
from seqtasks.data.catalogue import locate
from seqtasks.data.conllu import Sentence, iter_conllu
from seqtasks.data.files import dataset_directory, split_paths
from seqtasks.data.ragged import Ragged, RaggedBuilder
from seqtasks.errors import ConfigError, DataError
from seqtasks.tensors import lengths_mask
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.char import CharTokenizer
from seqtasks.tokenizers.labels import LabelVocabulary

IGNORE = -100  # tag id of padded positions (cross_entropy's ignore_index)


@dataclass
class EncodedSentence:
    """One sentence's words as ids: the model's input, and its gold tags where known."""

    word_ids: Sequence[int]  # ids in the `words` vocabulary (<unk> for unseen words)
    form_ids: Sequence[int]  # per word, its form's place in a form table: equal forms, equal ids
    char_ids: Sequence[Sequence[int]]  # per word, its form's ids in the `chars` vocabulary
    tag_ids: Sequence[int] | None = None  # gold tags (None when tagging new text)


class FormTable:
    """Each distinct form once: its word id and its character ids, so a treebank is stored as ids
    (a form id per word) and each form is tokenised once."""

    def __init__(self, words: Tokenizer, chars: Tokenizer):
        self.words, self.chars = words, chars
        self.index: dict[str, int] = {}
        self.word_of_form: list[int] = []
        self.char_ids: list[list[int]] = []

    def ids(self, forms: Sequence[str]) -> tuple[list[int], list[int]]:
        """(word ids, form ids) of a sentence's forms."""
        form_ids = []
        for form in forms:
            if form not in self.index:
                self.index[form] = len(self.word_of_form)
                self.word_of_form.append(word_id(self.words, form))
                self.char_ids.append(self.chars.encode(form) or [self.chars.vocab.unk_id])
            form_ids.append(self.index[form])
        return [self.word_of_form[f] for f in form_ids], form_ids

    def encode(self, forms: Sequence[str]) -> EncodedSentence:
        word_ids, form_ids = self.ids(forms)
        return EncodedSentence(word_ids, form_ids, [self.char_ids[f] for f in form_ids])


class EncodedTreebank(Sequence):
    """A split's sentences as flat id arrays (seqtasks.data.ragged): words, form ids and gold tags
    per sentence, characters per distinct form; item i is sentence i as an EncodedSentence."""

    def __init__(self, words: Ragged, forms: Ragged, tags: Ragged, form_chars: Ragged):
        self.words, self.forms, self.tags, self.form_chars = words, forms, tags, form_chars

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, i: int) -> EncodedSentence:  # type: ignore[override]
        forms = self.forms[i]
        return EncodedSentence(self.words[i], forms, [self.form_chars[f] for f in forms], self.tags[i])


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


def collate(
    sentences: Sequence[EncodedSentence], word_pad: int, char_pad: int, word_unk: int, indices: Sequence[int]
) -> TaggingBatch:
    """Encoded sentences (each >= 1 word) -> one padded batch; the distinct forms' characters once each."""
    words, lengths = pad_sequences([s.word_ids for s in sentences], word_pad)  # (B, T), (B,)
    B, T = words.shape
    tags = torch.full((B, T), IGNORE, dtype=torch.long)
    forms = torch.zeros(B, T, dtype=torch.long)
    distinct: dict[int, int] = {}  # form id -> its row in `chars`
    char_ids: list[Sequence[int]] = []
    for row, sentence in enumerate(sentences):
        n = len(sentence.word_ids)
        if sentence.tag_ids is not None:
            tags[row, :n] = torch.as_tensor(sentence.tag_ids, dtype=torch.long)
        positions = []
        for form, characters in zip(sentence.form_ids, sentence.char_ids, strict=True):
            if form not in distinct:
                distinct[form] = len(char_ids)
                char_ids.append(characters)
            positions.append(distinct[form])
        forms[row, :n] = torch.tensor(positions, dtype=torch.long)
    chars, char_lengths = pad_sequences(char_ids, char_pad)  # (U, C), (U,)
    unseen = (words == word_unk) & lengths_mask(lengths, T)  # (B, T): out of the training vocabulary
    return TaggingBatch(words, lengths, chars, char_lengths, forms, tags, unseen, list(indices))


class CollateSentences:
    """[(index, EncodedSentence)] -> TaggingBatch (see `collate`)."""

    def __init__(self, word_pad: int, char_pad: int, word_unk: int):
        self.word_pad, self.char_pad, self.word_unk = word_pad, char_pad, word_unk

    def __call__(self, examples: Sequence[tuple[int, EncodedSentence]]) -> TaggingBatch:
        sentences, indices = [sentence for _, sentence in examples], [index for index, _ in examples]
        return collate(sentences, self.word_pad, self.char_pad, self.word_unk, indices)


class Treebank:
    """A CoNLL-U file's sentences, streamed anew at each iteration (none held in memory)."""

    def __init__(self, path: Path):
        self.path = path

    def __iter__(self) -> Iterator[Sentence]:
        return iter_conllu(self.path)


@DATASETS.register("conllu")
class TaggingData(TokenBudgetData):
    """CoNLL-U files -> one tag (UPOS or XPOS) per word; defaults: UD English EWT under <root>/ud_english_ewt.

    Relative file paths are under <root>/ud_english_ewt (UD EWT's files are downloaded there when missing,
    unless download=false), absolute ones are used as given, so `data.test=/some/file.conllu` scores a
    model on any CoNLL-U file; `test: null` means no test split."""

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
        download: bool = True,
    ):
        super().__init__(max_tokens, val_max_tokens, num_workers)
        self.root, self.download = root, download
        self.files = split_paths(dataset_directory(root, "ud_english_ewt"), train, val, test)
        self.column = column

    def split_source(self, split: str) -> Path | None:
        return self.files[split]

    def read_split(self, split: str) -> Treebank:
        """The CoNLL-U sentences of 'train', 'val' or 'test', streamed; UD EWT's files are downloaded
        first when missing."""
        return Treebank(locate(self.files[split], self.root, self.download))

    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """Fit `words` (from the `tokenizer` group, which must be a word tokenizer), `chars` and `tags`
        on the training split."""
        if config.get("name") != "word":
            raise ConfigError(
                f"tagging needs tokenizer=word for its word vocabulary, got tokenizer={config.get('name')}"
            )
        sentences = self.read("train")

        def forms() -> Iterator[str]:
            return (word.form for sentence in sentences for word in sentence.words)

        return {
            "words": TOKENIZERS.build(config, "tokenizer").fit(forms()),
            "chars": CharTokenizer().fit(forms()),
            "tags": LabelVocabulary().fit(tag for sentence in sentences for tag in self.gold_tags("train", sentence)),
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

    def encode_split(self, split: str) -> EncodedTreebank:
        """The split as id arrays, in one streamed pass; each distinct form is tokenised once."""
        table = FormTable(self.tokenizers["words"], self.tokenizers["chars"])
        words, forms, tags = RaggedBuilder(), RaggedBuilder(), RaggedBuilder()
        for sentence in self.read(split):
            word_ids, form_ids = table.ids([w.form for w in sentence.words])
            words.append(word_ids)
            forms.append(form_ids)
            tags.append(self.tag_ids(split, sentence))
        return EncodedTreebank(words.build(), forms.build(), tags.build(), Ragged.build(table.char_ids))

    def tag_ids(self, split: str, sentence: Sentence) -> list[int]:
        """The sentence's gold tag ids; a tag training never saw fails naming the word's line."""
        vocab = self.tokenizers["tags"].vocab
        ids, gold = [], iter(self.gold_tags(split, sentence))
        for position, token in enumerate(sentence.lines):
            if not token.is_word:
                continue
            tag = next(gold)
            if tag not in vocab:
                raise DataError(
                    self.files[split],
                    f"word {token.id} ({token.form!r}): {self.column.upper()} tag {tag!r} was not seen in training "
                    f"(known: {', '.join(vocab.tokens)})",
                    line=self.line_of(sentence, position),
                )
            ids.append(vocab.index[tag])
        return ids

    def lengths(self, examples: EncodedTreebank) -> list[int]:
        return examples.words.lengths().tolist()

    def collate(self) -> CollateSentences:
        words = self.tokenizers["words"].vocab
        return CollateSentences(words.pad_id, self.tokenizers["chars"].vocab.pad_id, words.unk_id)


def check_tokenizers(tokenizers: dict[str, Tokenizer]) -> None:
    """Tagging needs `words` (with <pad> and <unk>), `chars` (with <pad> and <unk>) and `tags`."""
    missing = {"words", "chars", "tags"} - set(tokenizers)
    if missing:
        raise ConfigError(f"tagging needs the tokenizers words, chars and tags; missing: {', '.join(sorted(missing))}")
    for side in ("words", "chars"):
        vocab = tokenizers[side].vocab
        if vocab.pad_id is None or vocab.unk_id is None:
            raise ConfigError(f"tagging needs a {side} tokenizer with <pad> and <unk> tokens")
