"""The base class of the `image_encoders` registry: what captioning attends over.

forward(inputs) -> grid (B, R, D): R feature vectors per image (the cells of a CNN's last feature
map, row by row, or the regions of precomputed features), each `output_size` wide. `reads` says
which inputs it takes (`seqtasks/data/images.py`): images (B, 3, H, W) uint8, or feature arrays
(B, R, F) float; `input_size` flows forward from the data (3 colour channels, or F).
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from seqtasks.configuration.registry import IMAGE_ENCODERS
from seqtasks.configuration.validation import PositiveInt
from seqtasks.data.images import InputKind


@IMAGE_ENCODERS.base_class
class ImageEncoder(nn.Module):
    """Base of the image encoders."""

    reads: ClassVar[InputKind] = "image"

    def __init__(self, input_size: PositiveInt):
        super().__init__()
        self.input_size = input_size
        self.output_size = input_size

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs -> grid (B, R, output_size)."""
        raise NotImplementedError
