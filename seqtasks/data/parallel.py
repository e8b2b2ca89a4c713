"""Reading parallel text (translation pairs): two line-aligned files, or one `source<TAB>target` file.

Both return (source, target) pairs in file order. Lines split on '\\n' only; only the line break
(and a trailing '\\r') is removed, so empty lines are kept as pairs with an empty side: callers
decide what to do with them. gzip (.gz) is read transparently; errors name the file and the line.
"""

from __future__ import annotations

from pathlib import Path

from seqtasks.data.text import read_lines
from seqtasks.errors import DataError


def read_parallel(source: str | Path, target: str | Path) -> list[tuple[str, str]]:
    """Pairs from two line-aligned files: line i of `source` translates to line i of `target`."""
    sources, targets = read_lines(source), read_lines(target)
    if len(sources) != len(targets):
        raise DataError(
            source,
            f"has {len(sources)} lines, but its parallel file {target} has {len(targets)} lines; "
            "parallel files must be line-aligned (one sentence per line, the same number of lines)",
        )
    return list(zip(sources, targets, strict=True))


def read_parallel_tsv(path: str | Path) -> list[tuple[str, str]]:
    """Pairs from a file of `source<TAB>target` lines (no header, no quoting). A line with no tab or
    more than one fails naming the file and line; a fully empty line is the pair ('', '')."""
    pairs = []
    for number, line in enumerate(read_lines(path), start=1):
        if line == "":
            pairs.append(("", ""))
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(
                path, f"expected 'source<TAB>target' (exactly one tab), found {len(fields) - 1} tabs", line=number
            )
        pairs.append((fields[0], fields[1]))
    return pairs
