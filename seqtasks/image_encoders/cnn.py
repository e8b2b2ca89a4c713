"""A small CNN trained from scratch with the captioner (Show, Attend and Tell attends over the last
feature map of a CNN; Xu et al. 2015, https://arxiv.org/abs/1502.03044, there a pretrained VGG).

Each block is a 3x3 convolution, batch norm and ReLU; every block but the last halves the
resolution (stride 2), so the default four blocks turn a 64x64 image into an 8x8 grid of 128-wide
vectors, each cell seeing 31x31 pixels around it: enough to tell a shape at one place from one at
another, which is what attention needs.
"""

from __future__ import annotations

from torch import Tensor, nn

from seqtasks.errors import ConfigError
from seqtasks.image_encoders.base import ImageEncoder
from seqtasks.registry import IMAGE_ENCODERS
from seqtasks.validation import PositiveInt


@IMAGE_ENCODERS.register("cnn")
class ConvEncoder(ImageEncoder):
    """Small CNN from scratch (3x3 conv, batch norm, ReLU blocks) -> the grid of its last feature map."""

    reads = "image"

    def __init__(self, input_size: PositiveInt = 3, channels: list[PositiveInt] = (32, 64, 128, 128)):
        super().__init__(input_size)
        if not channels:
            raise ConfigError("image_encoder.channels: give at least one block, e.g. [32,64,128,128]")
        blocks, width = [], input_size
        for i, out in enumerate(channels):
            stride = 1 if i == len(channels) - 1 else 2
            blocks += [nn.Conv2d(width, out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
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
    """uint8 pixels to roughly zero mean and unit spread; batch norm does the rest."""
    return images.float().div(255.0).sub(0.5).div(0.25)
