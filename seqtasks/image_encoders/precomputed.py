"""Features that any vision model made beforehand (a ResNet's pooled vector, a detector's region
features, or `scripts/write_image_features.py` from a trained captioner's CNN), read from `.npy`
files by the data (`seqtasks/data/images.py`): layer norm, since another model's features come at
any scale, then a linear layer and ReLU to the decoder's memory width."""

from __future__ import annotations

from torch import Tensor, nn

from seqtasks.configuration.registry import IMAGE_ENCODERS
from seqtasks.configuration.validation import PositiveInt
from seqtasks.errors import ConfigError
from seqtasks.image_encoders.base import ImageEncoder


@IMAGE_ENCODERS.register("precomputed")
class PrecomputedFeatures(ImageEncoder):
    """Feature arrays from any vision model (.npy, (regions, dim) or (dim,)), normalised and projected."""

    reads = "features"

    def __init__(self, input_size: PositiveInt, size: PositiveInt = 256):
        super().__init__(input_size)
        self.project = nn.Sequential(nn.LayerNorm(input_size), nn.Linear(input_size, size), nn.ReLU())
        self.output_size = size

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ConfigError(
                f"image_encoder=precomputed reads feature arrays (B, regions, {self.input_size}); got "
                f"{tuple(inputs.shape)}: images need image_encoder=cnn"
            )
        return self.project(inputs.float())  # (B, R, size)
