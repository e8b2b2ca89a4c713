"""The one reader of text files: every format (plain text, TSV, parallel, CoNLL-U, names) reads its
lines through `read_lines`, so all of them treat files the same way:

- `-` is standard input; `.gz` files are decompressed transparently;
- the text must be UTF-8: an invalid byte fails naming the file, the line, the column and the byte
  offset;
- a leading byte-order mark is dropped; lines end at '\\n' only (str.splitlines would also split
  on form feeds and Unicode separators, and outputs would no longer line up with inputs), and a
  '\\r' before it is dropped (CRLF files read like LF files); the line break that ends the last line
  does not start another line;
- a file with nothing but whitespace is empty: it fails naming the file, unless the caller accepts
  empty input (`allow_empty`, e.g. predict).
"""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path

from seqtasks.errors import DataError

BOM = "\ufeff"


def display_name(path: str | Path) -> str | Path:
    """How a file is named in messages: '<stdin>' for '-'."""
    return "<stdin>" if str(path) == "-" else path


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, or standard input's for '-'; gzip (.gz) is decompressed transparently."""
    if str(path) == "-":
        stdin = sys.stdin.buffer if sys.stdin is not None and not sys.stdin.closed else None
        return stdin.read() if stdin is not None else b""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(path, f"cannot be read ({error.strerror or error})") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(path, f"not a valid gzip file ({error})") from None
    return raw


def decode_utf8(raw: bytes, path: str | Path) -> str:
    """UTF-8 bytes -> str without a leading byte-order mark; invalid bytes fail naming the line,
    column and byte offset."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(
            display_name(path),
            f"invalid UTF-8 at byte offset {error.start} (column {column}): byte "
            f"0x{raw[error.start]:02x} ({error.reason}); expected UTF-8 text",
            line=line,
        ) from None
    return text.removeprefix(BOM)


def split_lines(text: str) -> list[str]:
    """Lines of decoded text: split on '\\n' only, a '\\r' before it dropped; the final line break
    does not start another line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_lines(path: str | Path, allow_empty: bool = False) -> list[str]:
    """The lines of a UTF-8 text file (or of standard input for '-'), as the module docstring says."""
    text = decode_utf8(read_bytes(path), path)
    if not allow_empty and not text.strip():
        raise DataError(display_name(path), "file is empty; expected UTF-8 text")
    return split_lines(text)


def read_text(path: str | Path) -> str:
    """The whole file as one string, read as `read_lines` reads it: no BOM, CRLF as LF, not empty."""
    text = decode_utf8(read_bytes(path), path).replace("\r\n", "\n")
    if not text.strip():
        raise DataError(display_name(path), "file is empty; expected UTF-8 text")
    return text
