"""Reading text files with errors that name the file, line and byte offset."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from seqtasks.errors import DataError


def read_text(path: str | Path) -> str:
    """The whole file as str; gzip (.gz) is read transparently. Empty or non-UTF-8 files fail."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(path, f"not a valid gzip file ({error})") from None
    if not raw.strip():
        raise DataError(path, "file is empty; expected UTF-8 text")
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
