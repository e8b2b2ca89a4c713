"""Reading text files with errors that name the file, line and byte offset."""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path

from seqtasks.errors import DataError


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, or standard input's for '-'; gzip (.gz) is decompressed transparently."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(path, f"not a valid gzip file ({error})") from None
    return raw


def decode_utf8(raw: bytes, path: str | Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(
            path,
            f"invalid UTF-8 at byte offset {error.start} (column {column}): byte "
            f"0x{raw[error.start]:02x} ({error.reason}); expected UTF-8 text",
            line=line,
        ) from None


def read_text(path: str | Path) -> str:
    """The whole file as str; gzip (.gz) is read transparently. Empty or non-UTF-8 files fail."""
    raw = read_bytes(path)
    if not raw.strip():
        raise DataError(path, "file is empty; expected UTF-8 text")
    return decode_utf8(raw, path)


def read_lines(path: str | Path) -> list[str]:
    """One entry per line of a UTF-8 file, or of standard input for '-'. Lines split on '\\n' only
    (str.splitlines would also split on form feeds and Unicode separators, and outputs would no
    longer line up with the input); a final '\\r' is dropped; an empty file has no lines."""
    text = decode_utf8(read_bytes(path), "<stdin>" if str(path) == "-" else path)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the line break that ends the last line
    return [line.removesuffix("\r") for line in lines]
