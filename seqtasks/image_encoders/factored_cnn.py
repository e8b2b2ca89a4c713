"""A CNN whose features keep form and colour apart, so that a captioner can name a colour-shape
pair it never saw in training (a green triangle, when training had green circles and blue
triangles).

A plain CNN trained on captions learns detectors of the pairs it was shown: its features of a
green triangle are those of neither "green" nor "triangle" alone, and the decoder writes a pair it
knows ("a green circle"). Here each half of a grid vector can only see one of the two:

- form: the CNN of `cnn` over the HSV value channel (the largest of R, G, B at each pixel), which
  is nearly the same for a saturated shape of any colour: colour-blind by construction;
- colour: two 1x1 convolutions on the RGB of small pixel blocks (`colour_pool` pixels a side,
  averaged first: a block sees no shape, and the convolutions cost 1/colour_pool^2 of per-pixel
  ones), averaged over the blocks of each grid cell.

The grid is their concatenation per cell, (B, R, form + colour); attention picks the cells of one
shape and reads both its form and its colour there.
"""

from __future__ import annotations

from torch import Tensor, cat, nn
from torch.nn import functional as F

from seqtasks.configuration.registry import IMAGE_ENCODERS
from seqtasks.configuration.validation import PositiveInt
from seqtasks.image_encoders.base import ImageEncoder
from seqtasks.image_encoders.cnn import ConvEncoder, Norm, check_images, normalise


@IMAGE_ENCODERS.register("factored_cnn")
class FactoredConvEncoder(ImageEncoder):
    """Form (a CNN over the HSV value channel) beside colour (1x1 convolutions on pixel blocks, pooled per cell)."""

    reads = "image"

    def __init__(
        self,
        input_size: PositiveInt = 3,
        channels: list[PositiveInt] = (32, 64, 128, 128),
        colour_channels: PositiveInt = 32,
        colour_pool: PositiveInt = 4,
        norm: Norm = "group",
    ):
        super().__init__(input_size)
        self.form = ConvEncoder(1, channels, norm)
        self.colour = nn.Sequential(
            nn.Conv2d(input_size, colour_channels, 1),
            nn.ReLU(),
            nn.Conv2d(colour_channels, colour_channels, 1),
            nn.ReLU(),
        )
        self.colour_pool = colour_pool
        self.output_size = self.form.output_size + colour_channels

    def forward(self, inputs: Tensor) -> Tensor:
        check_images(inputs, self.input_size, "factored_cnn")
        value = inputs.amax(dim=1, keepdim=True)  # (B, 1, H, W): HSV's value, still uint8
        form = self.form.feature_map(value)  # (B, form, h, w)
        blocks = F.avg_pool2d(normalise(inputs), self.colour_pool, ceil_mode=True)  # (B, 3, H/p, W/p)
        # The grid's size as plain ints: ONNX export (seqtasks/onnx/) traces adaptive pooling to a
        # fixed output size only, and the data resizes every image to one size anyway.
        cells = (int(form.shape[-2]), int(form.shape[-1]))
        colour = F.adaptive_avg_pool2d(self.colour(blocks), cells)  # (B, colour, h, w): mean per cell
        return cat([form, colour], dim=1).flatten(2).transpose(1, 2)  # (B, h*w, form + colour)
