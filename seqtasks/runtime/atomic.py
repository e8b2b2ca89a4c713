"""Writing files so that readers only ever see the old content or the complete new content."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from seqtasks.errors import SeqtasksError


@contextmanager
def atomic_write(path: str | Path, suffix: str = ".partial") -> Iterator[BinaryIO]:
    """Yield a binary file beside `path`; when the block ends normally, fsync it and rename it
    over `path`. An exception (or a kill) leaves `path` as it was, never half-written.

    A symlink keeps pointing where it did: the file it points at is the one replaced. A path that
    is no regular file (a terminal, a pipe, /dev/null, /dev/stdout) is written in place, since a
    rename would put a file where the device was. A path that cannot be written fails naming it."""
    path = Path(path)
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        with opened(path) as f:
            yield f
        return
    path = Path(os.path.realpath(path))  # through symlinks: the file they point at
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as error:
        raise unwritable(path, error) from None
    try:
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
        with os.fdopen(handle, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(partial, path)
        except OSError as error:
            raise unwritable(path, error) from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


@contextmanager
def opened(path: Path) -> Iterator[BinaryIO]:
    try:
        f = open(path, "wb")  # noqa: SIM115 (the error of opening alone is translated)
    except OSError as error:
        raise unwritable(path, error) from None
    with f:
        yield f


def unwritable(path: Path, error: OSError) -> SeqtasksError:
    return SeqtasksError(f"{path}: cannot write there ({error.strerror or error})")
