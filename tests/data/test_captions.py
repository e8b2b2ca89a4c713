"""data=captions: image or feature TSVs, several captions per image, and errors that name the line."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seqtasks.data.captions import CaptionData, read_captions
from seqtasks.errors import DataError
from seqtasks.tokenizers import WordTokenizer


def write_image(path: Path, colour: tuple[int, int, int], side: int = 16) -> str:
    Image.new("RGB", (side, side), colour).save(path)
    return path.name


def test_several_captions_per_image_and_images_resized(tmp_path):
    red, blue = write_image(tmp_path / "red.png", (255, 0, 0), 20), write_image(tmp_path / "blue.jpg", (0, 0, 255))
    listing = tmp_path / "train.tsv"
    listing.write_text(f"{red}\ta red one\n\n{blue}\ta blue one\n{red}\tred again\n")
    split = read_captions(listing, image_size=8)
    assert split.paths == [tmp_path / "red.png", tmp_path / "blue.jpg"]
    assert split.captions == [["a red one", "red again"], ["a blue one"]]
    assert split.inputs[0].shape == (8, 8, 3) and split.inputs[0].dtype == np.uint8
    assert tuple(split.inputs[0][4, 4]) == (255, 0, 0)


def test_training_uses_every_caption_and_evaluation_every_image_once(tmp_path):
    red, blue = write_image(tmp_path / "red.png", (255, 0, 0)), write_image(tmp_path / "blue.png", (0, 0, 255))
    (tmp_path / "all.tsv").write_text(f"{red}\ta red one\n{blue}\ta blue one\n{red}\tred again\n")
    data = CaptionData(train=str(tmp_path / "all.tsv"), val=str(tmp_path / "all.tsv"), image_size=16)
    data.use_tokenizers({"text": WordTokenizer().fit(["a red one", "a blue one", "red again"])})
    assert len(data.encoded("train")) == 3 and len(data.encoded("val")) == 2
    batch = next(iter(data.val_dataloader()))
    assert batch.inputs.shape == (2, 3, 16, 16) and batch.regions is None
    assert sorted(map(tuple, batch.references)) == [("a blue one",), ("a red one", "red again")]
    assert data.input_spec() == {"kind": "image", "size": 3, "image_size": 16}


def test_feature_arrays_of_regions_or_one_vector_batch_with_their_region_counts(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((3, 5), dtype=np.float32))
    np.save(tmp_path / "b.npy", np.full(5, 2.0))  # (dim,): one vector
    (tmp_path / "train.tsv").write_text("a.npy\tthree regions\nb.npy\tone vector\n")
    data = CaptionData(train=str(tmp_path / "train.tsv"), val=str(tmp_path / "train.tsv"))
    data.use_tokenizers({"text": WordTokenizer().fit(["three regions", "one vector"])})
    batch = next(iter(data.val_dataloader()))
    order = batch.indices.index(1)
    assert batch.inputs.shape == (2, 3, 5) and batch.regions[order] == 1
    assert torch.equal(batch.inputs[order], torch.tensor([[2.0] * 5, [0.0] * 5, [0.0] * 5]))  # zero padding
    assert data.input_spec()["kind"] == "features" and data.input_spec()["size"] == 5


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda d: None, r"train.tsv:2: image .*missing.png not found"),
        (
            lambda d: (d / "missing.png").write_bytes(b"not a png at all"),
            r"train.tsv:2: cannot read image .*missing.png",
        ),
        (lambda d: np.save(d / "missing.npy", np.ones(3)), r"train.tsv:2: .*missing.npy.* is not like"),
    ],
)
def test_a_missing_or_unreadable_input_names_the_file_and_line(tmp_path, write, message):
    good = write_image(tmp_path / "good.png", (0, 255, 0))
    write(tmp_path)
    name = "missing.npy" if "like" in message else "missing.png"
    (tmp_path / "train.tsv").write_text(f"{good}\tfine\n{name}\tbroken\n")
    with pytest.raises(DataError, match=message):
        read_captions(tmp_path / "train.tsv", image_size=16)


def test_a_line_without_a_caption_names_the_line(tmp_path):
    good = write_image(tmp_path / "good.png", (0, 255, 0))
    (tmp_path / "train.tsv").write_text(f"{good}\tfine\n{good}\n")
    with pytest.raises(DataError, match=r"train.tsv:2: expected 'image<TAB>caption'"):
        read_captions(tmp_path / "train.tsv", image_size=16)
