"""The one reader of text files: every format (plain text, TSV, parallel, CoNLL-U, names, the
language-model stream) reads its lines through `iter_lines`, so all of them treat files the same way:

- `-` is standard input; `.gz` files are decompressed transparently; files are streamed, line by
  line, so a corpus larger than memory can be read;
- the text must be UTF-8: an invalid byte fails naming the file, the line, the column and the byte
  offset;
- a leading byte-order mark is dropped; lines end at '\\n' only (str.splitlines would also split
  on form feeds and Unicode separators, and outputs would no longer line up with inputs), and a
  '\\r' before it is dropped (CRLF files read like LF files); the line break that ends the last line
  does not start another line;
- a file with no text (no bytes, or only blank lines) fails naming the file and which of the two
  it is, unless the caller accepts empty input (`allow_empty`, e.g. predict).
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from seqtasks.errors import DataError

BOM = "\ufeff"


def display_name(path: str | Path) -> str | Path:
    """How a file is named in messages: '<stdin>' for '-'."""
    return "<stdin>" if str(path) == "-" else path


def check_is_file(path: Path) -> None:
    """DataError unless path is a file: a directory named where a file is read says so."""
    if path.is_dir():
        raise DataError(path, "is a directory; expected a file")
    if not path.is_file():
        raise DataError(path, "file not found")


@contextmanager
def open_binary(path: str | Path) -> Iterator[BinaryIO]:
    """The file (or standard input for '-') as a binary stream; gzip decompressed on the fly."""
    if str(path) == "-":
        stdin = sys.stdin.buffer if sys.stdin is not None and not sys.stdin.closed else None
        yield stdin if stdin is not None else _Empty()
        return
    path = Path(path)
    check_is_file(path)
    try:
        stream = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except OSError as error:
        raise DataError(path, f"cannot be read ({error.strerror or error})") from None
    try:
        yield stream
    except (OSError, EOFError, zlib.error) as error:
        if path.suffix == ".gz":
            raise DataError(path, f"not a valid gzip file ({error})") from None
        raise DataError(path, f"cannot be read ({error})") from None
    finally:
        stream.close()


class _Empty:
    """A closed standard input reads as empty."""

    def __iter__(self):
        return iter(())

    def read(self, size: int = -1) -> bytes:
        return b""


def decode_line(raw: bytes, path: str | Path, number: int, offset: int) -> str:
    """One line's bytes -> str; invalid UTF-8 fails naming the line, column and byte offset."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            display_name(path),
            f"invalid UTF-8 at byte offset {offset + error.start} (column {error.start + 1}): byte "
            f"0x{raw[error.start]:02x} ({error.reason}); expected UTF-8 text",
            line=number,
        ) from None


def iter_raw_lines(path: str | Path, allow_empty: bool = False) -> Iterator[tuple[str, bool]]:
    """(line, whether a line break ended it) for every line, as the module docstring says. Leading
    blank lines are held back until a line with text shows the file is not empty."""
    offset, held = 0, []
    with open_binary(path) as stream:
        for number, raw in enumerate(stream, start=1):
            ended = raw.endswith(b"\n")
            body = raw[:-1] if ended else raw
            body = body[:-1] if ended and body.endswith(b"\r") else body
            line = decode_line(body, path, number, offset)
            if number == 1:
                line = line.removeprefix(BOM)
            offset += len(raw)
            if held is not None:
                held.append((line, ended))
                if not line.strip():
                    continue
                yield from held
                held = None
                continue
            yield line, ended
    if held is not None:
        if not allow_empty:
            what = "file holds only blank lines" if held else "file is empty"
            raise DataError(display_name(path), f"{what}; expected UTF-8 text")
        yield from held


def iter_lines(path: str | Path, allow_empty: bool = False) -> Iterator[str]:
    """The lines of a UTF-8 text file (or of standard input for '-'), streamed."""
    for line, _ in iter_raw_lines(path, allow_empty):
        yield line


def read_lines(path: str | Path, allow_empty: bool = False) -> list[str]:
    """All the lines of a UTF-8 text file (or of standard input for '-')."""
    return list(iter_lines(path, allow_empty))


def iter_text(path: str | Path) -> Iterator[str]:
    """The file's text, streamed a line at a time with its line break ('\\n'; CRLF read as LF)."""
    for line, ended in iter_raw_lines(path):
        yield line + "\n" if ended else line


def read_text(path: str | Path) -> str:
    """The whole file as one string (no BOM, CRLF as LF, not empty)."""
    return "".join(iter_text(path))


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, or standard input's for '-'; gzip (.gz) is decompressed transparently."""
    with open_binary(path) as stream:
        return stream.read()
