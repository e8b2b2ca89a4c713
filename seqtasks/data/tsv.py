"""Reading labelled sentences for classification: GLUE-style TSV files (SST-2 `train.tsv`/`dev.tsv`)
and `<label> <sentence>` lines (Kim 2014's `stsa.binary.*`). Both return (text, label) pairs with
the text stripped of surrounding whitespace; errors name the file and the 1-based line."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from seqtasks.data.text import iter_lines
from seqtasks.errors import DataError


def read_labelled_tsv(
    path: str | Path,
    text_column: str | int = "sentence",
    label_column: str | int = "label",
    header: bool = True,
) -> list[tuple[str, str]]:
    return list(iter_labelled_tsv(path, text_column, label_column, header))


def iter_labelled_tsv(
    path: str | Path,
    text_column: str | int = "sentence",
    label_column: str | int = "label",
    header: bool = True,
) -> Iterator[tuple[str, str]]:
    """(text, label) pairs from a tab-separated file, streamed. Fields are split on tabs only (no
    CSV quoting: quote characters are ordinary text). With `header`, the columns are found by name in
    the first line (ints are taken as 0-based positions); without it they must be given as positions
    and every row must have as many fields as the first. Fully blank lines are skipped."""
    numbered = non_blank_lines(path)
    if header:
        header_number, names = header_names(path, numbered)
        first = next(numbered, None)
        positions = header_positions(path, header_number, names, [text_column, label_column])
        n_fields = len(names)
    else:
        first = next(numbered, None)
        if not (isinstance(text_column, int) and isinstance(label_column, int)):
            raise ValueError("without a header, give text_column and label_column as 0-based positions")
        positions = [text_column, label_column]
        n_fields = len(first[1].split("\t")) if first else 0
        if first and max(positions) >= n_fields:
            raise DataError(
                path,
                f"column position {max(positions)} is out of range; the first row has {n_fields} fields",
                line=first[0],
            )
    text_at, label_at = positions
    if first is None:
        raise DataError(path, "no data rows" + (" after the header" if header else ""))
    for number, line in chain([first], numbered):
        fields = line.split("\t")
        if len(fields) != n_fields:
            if len(fields) < n_fields and label_at >= len(fields):
                message = f"row has no label (expected {n_fields} tab-separated fields, found {len(fields)})"
            else:
                message = f"expected {n_fields} tab-separated fields, found {len(fields)}"
            raise DataError(path, message, line=number)
        text, label = fields[text_at].strip(), fields[label_at].strip()
        if not label:
            raise DataError(path, "row has no label (the label field is empty)", line=number)
        if not text:
            raise DataError(path, "row has no text (the text field is empty)", line=number)
        yield text, label


def non_blank_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of the file's lines that are not blank."""
    return ((number, line) for number, line in enumerate(iter_lines(path), start=1) if line.strip())


def header_names(path: str | Path, numbered: Iterator[tuple[int, str]]) -> tuple[int, list[str]]:
    """The header's line number and column names, read from the first of `numbered`."""
    first = next(numbered, None)
    if first is None:
        raise DataError(path, "no header line")
    return first[0], [name.strip() for name in first[1].split("\t")]


def header_positions(path: str | Path, line: int, names: list[str], columns: list[str | int]) -> list[int]:
    """The 0-based positions of columns (names, or positions kept as they are) in a header's names."""
    positions = []
    for column in columns:
        if isinstance(column, int):
            if not 0 <= column < len(names):
                raise DataError(
                    path,
                    f"column position {column} is out of range; the header has {len(names)} columns "
                    f"({', '.join(map(repr, names))})",
                    line=line,
                )
            positions.append(column)
        elif column in names:
            positions.append(names.index(column))
        else:
            raise DataError(
                path, f"header has no column {column!r}; found columns {', '.join(map(repr, names))}", line=line
            )
    return positions


def iter_tsv_column(path: str | Path, column: str) -> Iterator[str]:
    """One column's text from a tab-separated file whose first line names its columns, a row at a
    time, stripped (a language model's text out of a labelled set). Blank lines are skipped; a row
    with another number of fields than the header fails naming its line."""
    numbered = non_blank_lines(path)
    header_number, names = header_names(path, numbered)
    (at,) = header_positions(path, header_number, names, [column])
    rows = 0
    for number, line in numbered:
        fields = line.split("\t")
        if len(fields) != len(names):
            raise DataError(path, f"expected {len(names)} tab-separated fields, found {len(fields)}", line=number)
        rows += 1
        yield fields[at].strip()
    if not rows:
        raise DataError(path, "no data rows after the header")


def read_label_first_lines(path: str | Path) -> list[tuple[str, str]]:
    return list(iter_label_first_lines(path))


def iter_label_first_lines(path: str | Path) -> Iterator[tuple[str, str]]:
    """(text, label) pairs from lines of the form `<label> <sentence>` (label, one space, text),
    streamed. Fully blank lines are skipped; any other malformed line is an error naming it."""
    rows = 0
    for number, line in enumerate(iter_lines(path), start=1):
        if not line.strip():
            continue
        label, space, text = line.partition(" ")
        if not space:
            raise DataError(path, "expected '<label> <sentence>', found no space after the label", line=number)
        if not label:
            raise DataError(
                path, "label is empty (the line starts with a space); expected '<label> <sentence>'", line=number
            )
        if any(c.isspace() for c in label):
            raise DataError(path, f"label {label!r} contains whitespace; expected '<label> <sentence>'", line=number)
        text = text.strip()
        if not text:
            raise DataError(path, f"line has a label ({label!r}) but no sentence", line=number)
        rows += 1
        yield text, label
    if not rows:
        raise DataError(path, "no labelled lines")
