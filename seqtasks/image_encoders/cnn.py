"""A small CNN trained from scratch with the captioner (Show, Attend and Tell attends over the last
feature map of a CNN; Xu et al. 2015, https://arxiv.org/abs/1502.03044, there a pretrained VGG).

Each block is a 3x3 convolution, a normalisation and ReLU; every block but the last halves the
resolution (stride 2), so the default four blocks turn a 64x64 image into an 8x8 grid of 128-wide
vectors, each cell seeing 31x31 pixels around it: enough to tell a shape at one place from one at
another, which is what attention needs.

The normalisation is group norm (8 groups, per image) by default, not batch norm: batches are
length-bucketed by caption, so a batch holds images with the same number of shapes, and batch norm
learns from that batch statistic what its running averages cannot give at evaluation. On the shapes
set a batch-norm model's greedy val attribute accuracy was 53% with its running statistics and 88%
with each batch's own (same weights); group norm is the same in training and evaluation, and as fast.
`norm=batch` remains for data batched without such a bias.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from seqtasks.configuration.registry import IMAGE_ENCODERS
from seqtasks.configuration.validation import PositiveInt
from seqtasks.errors import ConfigError
from seqtasks.image_encoders.base import ImageEncoder

GROUPS = 8  # group norm's groups per block (Wu & He 2018 found 8 to 32 alike)
Norm = Literal["group", "batch"]  # a block's normalisation: per image, or per batch


@IMAGE_ENCODERS.register("cnn")
class ConvEncoder(ImageEncoder):
    """Small CNN from scratch (3x3 conv, group or batch norm, ReLU blocks) -> the grid of its last feature map."""

    reads = "image"

    def __init__(
        self,
        input_size: PositiveInt = 3,
        channels: list[PositiveInt] = (32, 64, 128, 128),
        norm: Norm = "group",
    ):
        super().__init__(input_size)
        if not channels:
            raise ConfigError("image_encoder.channels: give at least one block, e.g. [32,64,128,128]")
        if norm == "group" and any(out % GROUPS for out in channels):
            raise ConfigError(
                f"image_encoder.channels={list(channels)}: group norm splits each block into {GROUPS} groups, "
                f"so every width must be a multiple of {GROUPS} (or set image_encoder.norm=batch)"
            )
        blocks, width = [], input_size
        for i, out in enumerate(channels):
            stride = 1 if i == len(channels) - 1 else 2
            normalisation = nn.GroupNorm(GROUPS, out) if norm == "group" else nn.BatchNorm2d(out)
            blocks += [nn.Conv2d(width, out, 3, stride=stride, padding=1, bias=False), normalisation, nn.ReLU()]
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.output_size = width

    def forward(self, inputs: Tensor) -> Tensor:
        check_images(inputs, self.input_size, "cnn")
        return self.feature_map(inputs).flatten(2).transpose(1, 2)  # (B, h*w, D): the grid row by row

    def feature_map(self, images: Tensor) -> Tensor:
        """(B, C, H, W) uint8 pixels -> (B, D, h, w), the last block's feature map."""
        return self.blocks(normalise(images))


def check_images(inputs: Tensor, channels: int, name: str) -> None:
    if inputs.dim() != 4 or inputs.shape[1] != channels:
        raise ConfigError(
            f"image_encoder={name} reads images (B, {channels}, H, W); got {tuple(inputs.shape)}: "
            "feature arrays (.npy) need image_encoder=precomputed"
        )


def normalise(images: Tensor) -> Tensor:
    """uint8 pixels to roughly zero mean and unit spread; the blocks' normalisation does the rest."""
    return images.float().div(255.0).sub(0.5).div(0.25)
