"""Image encoders: the grid each one gives, and a refusal of the other kind of input."""

import pytest
import torch

from seqtasks.configuration.registry import IMAGE_ENCODERS
from seqtasks.errors import ConfigError


@pytest.mark.parametrize(
    ("side", "channels", "cells"), [(64, [32, 64, 128, 128], 64), (32, [8, 16], 256), (64, [8], 4096)]
)
def test_cnn_gives_a_grid_of_the_last_blocks_width(side, channels, cells):
    encoder = IMAGE_ENCODERS.build({"name": "cnn", "channels": channels}, input_size=3)
    images = torch.randint(0, 256, (2, 3, side, side), dtype=torch.uint8)
    grid = encoder(images)
    # every block but the last halves the side: cells = (side / 2**(blocks-1))**2
    assert grid.shape == (2, cells, channels[-1]) and encoder.output_size == channels[-1]


def test_cnn_grid_is_row_by_row_over_the_image():
    # Batch norm in eval is per pixel, so only the convolutions spread the change (group norm's
    # per-image statistic would reach every cell).
    encoder = IMAGE_ENCODERS.build({"name": "cnn", "channels": [8], "norm": "batch"}, input_size=3).eval()
    images = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    changed = images.clone()
    changed[0, :, 2, 5] = 255  # one pixel at row 2, column 5
    difference = (encoder(changed) - encoder(images)).abs().sum(-1)[0]  # (64,)
    # a 3x3 convolution at stride 1: only the cells around (2, 5) change, cell 2*8+5 among them
    assert set(difference.nonzero().flatten().tolist()) <= {r * 8 + c for r in (1, 2, 3) for c in (4, 5, 6)}
    assert difference[2 * 8 + 5] > 0


@pytest.mark.parametrize(("regions", "width"), [(1, 10), (7, 10)])
def test_precomputed_projects_every_region(regions, width):
    encoder = IMAGE_ENCODERS.build({"name": "precomputed", "size": 16}, input_size=width)
    grid = encoder(torch.randn(3, regions, width))
    assert grid.shape == (3, regions, 16) and (grid >= 0).all()  # ReLU


def test_each_encoder_refuses_the_other_kind_of_input():
    cnn = IMAGE_ENCODERS.build({"name": "cnn", "channels": [8]}, input_size=3)
    with pytest.raises(ConfigError, match="need image_encoder=precomputed"):
        cnn(torch.randn(2, 5, 10))
    precomputed = IMAGE_ENCODERS.build({"name": "precomputed"}, input_size=10)
    with pytest.raises(ConfigError, match="images need image_encoder=cnn"):
        precomputed(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_factored_cnn_keeps_form_blind_to_colour_and_colour_blind_to_form():
    encoder = IMAGE_ENCODERS.build({"name": "factored_cnn", "channels": [8, 16], "colour_channels": 4}, input_size=3)
    encoder.eval()
    red = torch.full((1, 3, 16, 16), 30, dtype=torch.uint8)
    red[0, 0, 2:6, 2:6] = 200  # a red square in the top-left cell
    blue = torch.full((1, 3, 16, 16), 30, dtype=torch.uint8)
    blue[0, 2, 2:6, 2:6] = 200  # the same square in blue: the same HSV value everywhere
    grid_red, grid_blue = encoder(red), encoder(blue)
    assert grid_red.shape == (1, 64, 16 + 4) and encoder.output_size == 20  # 16x16 -> an 8x8 grid
    form, colour = slice(0, 16), slice(16, 20)
    torch.testing.assert_close(grid_red[..., form], grid_blue[..., form])
    assert not torch.allclose(grid_red[..., colour], grid_blue[..., colour])
    # One bright pixel moved inside its grid cell (2x2 pixels here): the colour half does not change,
    # the form half does.
    left, right = red.clone(), red.clone()
    left[0, 1, 10, 10] = 250
    right[0, 1, 10, 11] = 250
    grid_left, grid_right = encoder(left), encoder(right)
    torch.testing.assert_close(grid_left[..., colour], grid_right[..., colour])
    assert not torch.allclose(grid_left[..., form], grid_right[..., form])


@pytest.mark.parametrize("name", ["cnn", "factored_cnn"])
def test_an_image_grid_does_not_depend_on_the_rest_of_its_batch_in_training(name):
    """Length-bucketed batches share a caption length (so a shape count): batch norm learned from
    that what evaluation never has. The default group norm reads each image alone."""
    torch.manual_seed(0)
    encoder = IMAGE_ENCODERS.build({"name": name}, "image_encoder", input_size=3).train()
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    torch.testing.assert_close(encoder(images)[:1], encoder(images[:1]))


def test_group_norm_refuses_a_width_it_cannot_split_naming_the_way_out():
    with pytest.raises(ConfigError, match=r"multiple of 8 \(or set image_encoder.norm=batch\)"):
        IMAGE_ENCODERS.build({"name": "cnn", "channels": [8, 12]}, input_size=3)
    assert IMAGE_ENCODERS.build({"name": "cnn", "channels": [8, 12], "norm": "batch"}, input_size=3).output_size == 12
