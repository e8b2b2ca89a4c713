"""Where dataset files live, and fetching them: checksum-checked, atomic, with a progress bar.

A file is fetched from its upstream URL, or from a mirror when $SEQTASKS_MIRROR is set: the mirror
keeps each file's host and path, so https://<host>/<path> is fetched from $SEQTASKS_MIRROR/<host>/<path>
(e.g. SEQTASKS_MIRROR=http://mirror.lan/seqtasks, or file:///srv/mirror for a local copy of the files).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from tqdm import tqdm

from seqtasks.errors import DataError
from seqtasks.runtime.atomic import atomic_write

log = logging.getLogger(__name__)

NOT_FOUND = "not found (data root: {root}; set data.root or $SEQTASKS_DATA)"


def default_root() -> Path:
    """$SEQTASKS_DATA, else ~/.cache/seqtasks."""
    env = os.environ.get("SEQTASKS_DATA")
    return Path(env) if env else Path.home() / ".cache" / "seqtasks"


def data_root(root: str | Path | None) -> Path:
    """The data root: `root` (data.root) when given, else the default root."""
    return Path(root).expanduser() if root else default_root()


def dataset_directory(root: str | None, name: str) -> Path:
    """<root>/<name>: a dataset's own directory under the data root (None: the default root)."""
    return data_root(root) / name


def split_paths(directory: Path, train: str, val: str, test: str | None) -> dict[str, Path | None]:
    """{'train', 'val', 'test'} -> file (test None when not given). Relative paths are the dataset's
    own files under `directory`; absolute ones (a user's file) are used as given."""

    def resolve(path: str) -> Path:
        path = Path(path).expanduser()
        return path if path.is_absolute() else directory / path

    return {"train": resolve(train), "val": resolve(val), "test": resolve(test) if test is not None else None}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mirrored(url: str) -> str:
    """`url` as fetched: on $SEQTASKS_MIRROR (<mirror>/<host>/<path>) when that is set, else itself."""
    mirror = os.environ.get("SEQTASKS_MIRROR")
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def _copy(response: BinaryIO, out: BinaryIO, total: int | None, name: str) -> tuple[int, str]:
    """Copy the response body into `out` behind a progress bar on stderr -> (bytes copied, their sha256)."""
    digest, copied = hashlib.sha256(), 0
    with tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr) as bar:
        while block := response.read(1 << 16):
            out.write(block)
            digest.update(block)
            copied += len(block)
            bar.update(len(block))
    return copied, digest.hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its place under the data root, and optionally where to download it."""

    relative_path: str
    url: str | None = None
    sha256: str | None = None

    def locate(self, root: str | Path | None, download: bool = True) -> Path:
        """The file's path under `root` (None: the default root), downloaded first if missing and `download`."""
        root = data_root(root)
        path = root / self.relative_path
        if path.is_file():
            return path
        if self.url and download:
            return self.download(path)
        hint = (
            f"data.download=false, so it is not fetched from {self.url} (set data.download=true to fetch it)"
            if self.url
            else "no download URL is known for this file; copy it there"
        )
        raise DataError(path, f"dataset file {NOT_FOUND.format(root=root)}; {hint}")

    def download(self, path: Path, timeout: float = 60.0) -> Path:
        """Fetch the file into `path` atomically (see `fetch`): a failure leaves nothing behind."""
        try:
            with atomic_write(path, suffix=".part") as out:
                self.fetch(out, path, timeout)
        except OSError as error:  # fetch reports the network's errors itself: these are the data root's
            raise DataError(path, f"cannot write the download: {error}") from None
        return path

    def fetch(self, out: BinaryIO, path: Path, timeout: float = 60.0) -> None:
        """Write the file's bytes into `out`, behind a progress bar. A network failure, a connection that
        closes early and a checksum mismatch each raise a DataError naming `path` (where the file goes)
        and the URL."""
        url = mirrored(self.url)
        log.info("downloading %s to %s", url, path)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length else None
                copied, actual = _copy(response, out, total, path.name)
        except (OSError, http.client.HTTPException) as error:
            raise DataError(path, f"download from {url} failed: {error}") from None
        # http.client ends a body the server cut short quietly: only the length tells.
        if total is not None and copied != total:
            raise DataError(path, f"download from {url} failed: connection closed after {copied} of {total} bytes")
        if self.sha256 and actual != self.sha256:
            raise DataError(path, f"download from {url} has sha256 {actual}, expected {self.sha256}")
