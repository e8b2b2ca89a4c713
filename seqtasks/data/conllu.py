"""Reading and writing CoNLL-U (Universal Dependencies) files, keeping every line so that a file
read and written back is byte-identical, and tagging output can replace just the UPOS/XPOS column.

Format (https://universaldependencies.org/format.html): sentences are blocks of lines separated by
a blank line; '#' comment lines come first, then one line of 10 tab-separated columns per token.
A token's ID is an integer (a syntactic word, numbered 1, 2, 3, ... in each sentence), a range
such as `3-4` (a multiword token whose words follow it), or a decimal such as `8.1` (an empty node
of enhanced dependencies). Only the integer-ID words are what a tagger tags (`Sentence.words`).
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from seqtasks.data.text import display_name, iter_lines
from seqtasks.errors import DataError
from seqtasks.runtime.atomic import atomic_write

COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")

_WORD_ID = re.compile(r"[0-9]+")
_RANGE_ID = re.compile(r"[0-9]+-[0-9]+")
_EMPTY_NODE_ID = re.compile(r"[0-9]+\.[0-9]+")


@dataclass(frozen=True)
class Token:
    """One token line: the 10 CoNLL-U columns, exactly as written in the file."""

    id: str
    form: str
    lemma: str
    upos: str
    xpos: str
    feats: str
    head: str
    deprel: str
    deps: str
    misc: str

    @property
    def is_word(self) -> bool:
        """A syntactic word (integer ID), as opposed to a multiword-token range or an empty node."""
        return _WORD_ID.fullmatch(self.id) is not None

    @property
    def is_multiword(self) -> bool:
        return _RANGE_ID.fullmatch(self.id) is not None

    @property
    def is_empty_node(self) -> bool:
        return _EMPTY_NODE_ID.fullmatch(self.id) is not None

    def to_line(self) -> str:
        """The tab-separated line (without the newline)."""
        return "\t".join(getattr(self, name) for name in COLUMNS)


@dataclass
class Sentence:
    """A sentence: its '#' comment lines (raw, without the newline) and all its token lines in file
    order, multiword-token ranges and empty nodes included. `line` is the 1-based line number where
    the sentence starts in the file it was read from (None for sentences built in code)."""

    comments: list[str] = field(default_factory=list)
    lines: list[Token] = field(default_factory=list)
    line: int | None = field(default=None, compare=False)

    @property
    def words(self) -> list[Token]:
        """The syntactic words (integer IDs 1..n) in order; multiword ranges and empty nodes left out."""
        return [token for token in self.lines if token.is_word]

    def to_text(self) -> str:
        """The sentence as CoNLL-U text: comments, token lines, then the blank line that ends it."""
        return "".join(line + "\n" for line in [*self.comments, *(t.to_line() for t in self.lines)]) + "\n"


def read_conllu(path: str | Path) -> list[Sentence]:
    """All sentences of a CoNLL-U file (gzip read transparently, '-' for standard input), read by
    the one line reader (`seqtasks.data.text`): CRLF line ends and a leading byte-order mark are
    accepted (and not written back)."""
    return list(iter_conllu(path))


def iter_conllu(path: str | Path) -> Iterator[Sentence]:
    """The sentences of a CoNLL-U file, streamed (a treebank larger than memory can be read)."""
    return parse_conllu(iter_lines(path), display_name(path))


def parse_conllu(lines: Iterable[str], path: str | Path) -> Iterator[Sentence]:
    """Sentences from the lines of a CoNLL-U file (named `path` in errors), one at a time. A missing
    final blank line and runs of several blank lines are tolerated. Malformed lines raise DataError
    with the 1-based line number."""
    current: Sentence | None = None
    next_word = 1

    def finished(sentence: Sentence) -> Sentence:
        if not sentence.lines:
            raise DataError(path, "sentence has comment lines but no token lines", line=sentence.line)
        if not any(token.is_word for token in sentence.lines):
            raise DataError(path, "sentence has no word lines (integer ids)", line=sentence.line)
        return sentence

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if current is not None:
                yield finished(current)
            current, next_word = None, 1
            continue
        if current is None:
            current = Sentence(line=number)
        if line.startswith("#"):
            if current.lines:
                raise DataError(
                    path,
                    "comment line after token lines; comments must come before a sentence's first token "
                    "(is the blank line that ends the previous sentence missing?)",
                    line=number,
                )
            current.comments.append(line)
            continue
        columns = line.split("\t")
        if len(columns) != len(COLUMNS):
            raise DataError(path, f"expected 10 tab-separated columns, found {len(columns)}", line=number)
        for position, (name, value) in enumerate(zip(COLUMNS, columns, strict=True), start=1):
            if value == "":
                raise DataError(
                    path, f"column {position} ({name.upper()}) is empty; write '_' for no value", line=number
                )
        token = Token(*columns)
        if token.is_word:
            if int(token.id) != next_word:
                raise DataError(
                    path,
                    f"word id {token.id} out of order; expected {next_word} (word ids count 1, 2, 3, ... "
                    "in each sentence)",
                    line=number,
                )
            next_word += 1
        elif not (token.is_multiword or token.is_empty_node):
            raise DataError(
                path,
                f"expected an integer word id, a range like 3-4 or an empty node like 8.1, found {token.id!r}",
                line=number,
            )
        current.lines.append(token)
    if current is not None:
        yield finished(current)


def _replace_column(sentences: Sequence[Sentence], tags: Sequence[Sequence[str]] | None, column: str) -> list[Sentence]:
    if tags is None:
        return list(sentences)
    if len(tags) != len(sentences):
        raise ValueError(f"{column} tags given for {len(tags)} sentences, but there are {len(sentences)} sentences")
    replaced = []
    for index, (sentence, sentence_tags) in enumerate(zip(sentences, tags, strict=True)):
        n_words = sum(1 for token in sentence.lines if token.is_word)
        if len(sentence_tags) != n_words:
            raise ValueError(f"sentence {index}: {len(sentence_tags)} {column} tags given for {n_words} words")
        for tag in sentence_tags:
            if not isinstance(tag, str) or not tag or any(c in tag for c in "\t\n\r"):
                raise ValueError(
                    f"sentence {index}: {column} tag {tag!r} is not a non-empty string without tabs or line breaks"
                )
        new_tags = iter(sentence_tags)
        lines = [
            dataclasses.replace(token, **{column: next(new_tags)}) if token.is_word else token
            for token in sentence.lines
        ]
        replaced.append(Sentence(comments=list(sentence.comments), lines=lines, line=sentence.line))
    return replaced


def write_conllu(
    sentences: Sequence[Sentence],
    path_or_file: str | Path | IO[str] | IO[bytes],
    upos: Sequence[Sequence[str]] | None = None,
    xpos: Sequence[Sequence[str]] | None = None,
) -> None:
    """Write sentences as CoNLL-U (UTF-8, '\\n' line ends, a blank line after every sentence), so
    that read_conllu -> write_conllu reproduces a well-formed file byte for byte. `upos`/`xpos`:
    one tag list per sentence, one tag per syntactic word, replacing that column of the word lines
    (multiword ranges and empty nodes are left as they are). A path is written atomically; an open
    file gets str (text mode) or UTF-8 bytes (binary mode)."""
    sentences = _replace_column(sentences, upos, "upos")
    sentences = _replace_column(sentences, xpos, "xpos")
    text = "".join(sentence.to_text() for sentence in sentences)
    if isinstance(path_or_file, (str, Path)):
        with atomic_write(path_or_file) as out:
            out.write(text.encode("utf-8"))
    elif isinstance(path_or_file, io.TextIOBase):
        path_or_file.write(text)
    else:
        path_or_file.write(text.encode("utf-8"))


def sentence_from_tokens(words: Sequence[str]) -> Sentence:
    """A sentence of the given words (IDs 1..n, FORM set, every other column '_'), e.g. for tagging
    whitespace-tokenised text."""
    if not words:
        raise ValueError("a sentence needs at least one word")
    for word in words:
        if not isinstance(word, str) or not word or any(c in word for c in "\t\n\r"):
            raise ValueError(f"word {word!r} is not a non-empty string without tabs or line breaks")
    return Sentence(lines=[Token(str(i), word, *["_"] * 8) for i, word in enumerate(words, start=1)])
