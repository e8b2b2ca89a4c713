"""Where dataset files live, and fetching them (with checksum) when a dataset has a public URL."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from seqtasks.atomic import atomic_write
from seqtasks.errors import DataError


def default_root() -> Path:
    """$SEQTASKS_DATA, else ~/.cache/seqtasks."""
    env = os.environ.get("SEQTASKS_DATA")
    return Path(env) if env else Path.home() / ".cache" / "seqtasks"


def dataset_directory(root: str | None, name: str) -> Path:
    """<root>/<name>: a dataset's own directory under the data root (None: the default root)."""
    return (Path(root).expanduser() if root else default_root()) / name


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


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its place under the data root, and optionally where to download it."""

    relative_path: str
    url: str | None = None
    sha256: str | None = None

    def locate(self, root: str | Path | None, download: bool = False) -> Path:
        """The file's path under `root` (None: the default root), downloading it if asked and missing."""
        root = Path(root).expanduser() if root else default_root()
        path = root / self.relative_path
        if path.is_file():
            return path
        if download and self.url:
            return self.download(path)
        hint = (
            ("set data.download=true to fetch it from " + self.url)
            if self.url
            else "this dataset has no download URL; copy the file there"
        )
        raise DataError(path, f"dataset file not found (data root: {root}; set data.root or $SEQTASKS_DATA); {hint}")

    def download(self, path: Path, timeout: float = 60.0) -> Path:
        """Fetch `url` into `path` atomically; a failure or checksum mismatch leaves nothing behind."""
        try:
            with atomic_write(path, suffix=".part") as out:
                digest = hashlib.sha256()
                with urllib.request.urlopen(self.url, timeout=timeout) as response:
                    while block := response.read(1 << 20):
                        out.write(block)
                        digest.update(block)
                if self.sha256 and (actual := digest.hexdigest()) != self.sha256:
                    raise DataError(path, f"download from {self.url} has sha256 {actual}, expected {self.sha256}")
        except OSError as error:
            raise DataError(path, f"download from {self.url} failed: {error}") from None
        return path
