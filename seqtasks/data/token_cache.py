"""A corpus tokenised once: token ids in a flat file that later runs memory-map instead of
tokenising again, keyed by the content hash of the text and the tokenizer (so an edited file or
another vocabulary never reuses stale ids). A memory map holds no Python object per token and
reads only the pages a batch touches, so a corpus larger than memory trains in bounded memory.

The cache directory is `data.cache_dir`, else $SEQTASKS_CACHE, else ~/.cache/seqtasks; each entry
is `<key>.ids` (little-endian uint16 or uint32) beside `<key>.json` (its dtype and length, written
last, so an entry without it was never finished and is made again).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from seqtasks.runtime.atomic import atomic_write


def default_cache_dir() -> Path:
    env = os.environ.get("SEQTASKS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "seqtasks"


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def key_of(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


class TokenCache:
    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()

    def json(self, key: str, make: Callable[[], Any]) -> Any:
        """A small JSON value (a fitted tokenizer's state, a character count), made once."""
        path = self.directory / f"{key}.value.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        value = make()
        with atomic_write(path) as f:
            f.write(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        return value

    def ids(self, key: str, chunks: Callable[[], Iterable[list[int]]], vocab_size: int, what: str) -> np.ndarray:
        """The ids of `chunks()` (lists of token ids, in order) as a read-only memory map, made once."""
        data, meta = self.directory / f"{key}.ids", self.directory / f"{key}.json"
        if meta.is_file() and data.is_file():
            info = json.loads(meta.read_text())
            rank_zero_info(f"{what}: {info['length']:,} token ids from the cache ({data})")
            return np.memmap(data, dtype=info["dtype"], mode="r", shape=(info["length"],))
        dtype = np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")
        start, length, pending = time.perf_counter(), 0, []
        with atomic_write(data) as f:
            for chunk in chunks():
                pending.extend(chunk)
                if len(pending) >= 1 << 20:  # write in blocks of a million ids
                    f.write(np.asarray(pending, dtype=dtype).tobytes())
                    length, pending = length + len(pending), []
            f.write(np.asarray(pending, dtype=dtype).tobytes())
            length += len(pending)
        with atomic_write(meta) as f:
            f.write(json.dumps({"dtype": dtype.str, "length": length}).encode("utf-8"))
        rank_zero_info(f"{what}: tokenised {length:,} tokens in {time.perf_counter() - start:.1f} s, cached as {data}")
        if length == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(data, dtype=dtype, mode="r", shape=(length,))
