"""Reading parallel text (translation pairs): two line-aligned files, or one `source<TAB>target` file.

Both return (source, target) pairs in file order. Lines split on '\\n' only; only the line break
(and a trailing '\\r') is removed, so empty lines are kept as pairs with an empty side: callers
decide what to do with them. gzip (.gz) is read transparently; errors name the file and the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path

from seqtasks.data.text import iter_lines
from seqtasks.errors import DataError


def iter_parallel(source: str | Path, target: str | Path) -> Iterator[tuple[str, str]]:
    """Pairs from two line-aligned files, streamed: line i of `source` translates to line i of `target`."""
    sources, targets = iter_lines(source), iter_lines(target)
    count = 0
    for pair in zip_longest(sources, targets):
        if None in pair:  # one file ended first: count the rest of the other for the message
            rest = sum(1 for _ in (sources if pair[1] is None else targets)) + 1
            counts = (count + rest, count) if pair[1] is None else (count, count + rest)
            raise DataError(
                source,
                f"has {counts[0]} lines, but its parallel file {target} has {counts[1]} lines; "
                "parallel files must be line-aligned (one sentence per line, the same number of lines)",
            )
        count += 1
        yield pair


def iter_parallel_tsv(path: str | Path) -> Iterator[tuple[str, str]]:
    """Pairs from a file of `source<TAB>target` lines (no header, no quoting), streamed. A line with
    no tab or more than one fails naming the file and line; a fully empty line is the pair ('', '')."""
    for number, line in enumerate(iter_lines(path), start=1):
        if line == "":
            yield "", ""
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(
                path, f"expected 'source<TAB>target' (exactly one tab), found {len(fields) - 1} tabs", line=number
            )
        yield fields[0], fields[1]


def read_parallel(source: str | Path, target: str | Path) -> list[tuple[str, str]]:
    return list(iter_parallel(source, target))


def read_parallel_tsv(path: str | Path) -> list[tuple[str, str]]:
    return list(iter_parallel_tsv(path))


class ParallelCorpus:
    """A split's pairs (one TSV, or two line-aligned files), streamed anew at each iteration."""

    def __init__(self, files: Path | tuple[Path, Path]):
        self.files = files

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter_parallel(*self.files) if isinstance(self.files, tuple) else iter_parallel_tsv(self.files)
