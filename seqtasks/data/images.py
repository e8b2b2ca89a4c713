"""Reading captioning inputs: an image (PNG, JPEG or anything else Pillow opens), or a feature
array that another vision model wrote (`.npy`: `(regions, dim)`, or `(dim,)` for one vector).

Images are converted to RGB and resized to `image_size` x `image_size`, so that they batch;
features are kept as float32 (regions, dim). A missing or unreadable file fails with a DataError
naming the listing file and line that asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from seqtasks.errors import DataError

FEATURES_SUFFIX = ".npy"
InputKind = Literal["image", "features"]


def input_kind(path: Path) -> InputKind:
    return "features" if path.suffix == FEATURES_SUFFIX else "image"


def load_input(path: Path, image_size: int, listing: str | Path, line: int) -> np.ndarray:
    """An image as uint8 (image_size, image_size, 3), or a feature array as float32 (regions, dim)."""
    kind = "feature array" if input_kind(path) == "features" else "image"
    if not path.is_file():
        raise DataError(listing, f"{kind} {path} not found", line=line)
    try:
        if kind == "image":
            with Image.open(path) as image:
                rgb = image.convert("RGB")
            if rgb.size != (image_size, image_size):
                rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError; numpy raises both
        raise DataError(listing, f"cannot read {kind} {path} ({error})", line=line) from None
    array = array[None] if array.ndim == 1 else array
    if array.ndim != 2 or array.shape[0] == 0 or not np.issubdtype(array.dtype, np.number):
        raise DataError(
            listing, f"{path}: expected a numeric array of shape (regions, dim) or (dim,); found {array.shape}", line
        )
    return array.astype(np.float32)


def stack_inputs(arrays: Sequence[np.ndarray]) -> tuple[Tensor, Tensor | None]:
    """Inputs of one kind -> a batch: images (B, 3, H, W) uint8 and None, or features (B, R, D)
    float32 padded with zeros to the most regions and each one's regions (B,) long."""
    if arrays[0].dtype == np.uint8:
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2), None  # (B, H, W, 3) -> (B, 3, H, W)
    regions = torch.tensor([len(a) for a in arrays], dtype=torch.long)
    features = torch.zeros(len(arrays), int(regions.max()), arrays[0].shape[1])
    for row, array in enumerate(arrays):
        features[row, : len(array)] = torch.from_numpy(array)
    return features, regions
