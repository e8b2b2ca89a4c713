"""Captioning data: TSV files of `image<TAB>caption` lines (`data=captions`).

The first field is an image (PNG, JPEG, ...) or a feature array (`.npy`) that another vision model
wrote, relative to the TSV's own directory (or absolute); an image may have several lines, one per
caption. A split is read whole when the run starts, inputs decoded once (`seqtasks/data/images.py`),
so a missing or unreadable image fails before training, naming the TSV and the line.

Training uses every (image, caption) line as one example; validation and test use every image
once, scored against all its captions (the first one also gives the loss). Batches hold up to
`max_tokens` padded caption tokens of similar length (`TokenBudgetData`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from torch import Tensor

from seqtasks.configuration.registry import DATASETS, TOKENIZERS
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt, Range
from seqtasks.data.base import TokenBudgetData
from seqtasks.data.batching import TensorBatch, teacher_forcing_targets
from seqtasks.data.files import dataset_directory, split_paths
from seqtasks.data.images import input_kind, load_input, stack_inputs
from seqtasks.data.text import iter_lines
from seqtasks.errors import ConfigError, DataError
from seqtasks.tokenizers.base import Tokenizer

MaxLength = Annotated[int, Range(low=2)]  # a caption token plus <eos>


@dataclass
class CaptionSplit:
    """A split's images (in order of first appearance), their decoded inputs and their captions."""

    paths: list[Path]
    inputs: list[np.ndarray]  # (H, W, 3) uint8 images, or (R, D) float32 features
    captions: list[list[str]]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[tuple[Path, list[str]]]:
        return zip(self.paths, self.captions, strict=True)


def read_captions(listing: Path, image_size: int) -> CaptionSplit:
    """A TSV of `image<TAB>caption` lines -> its images and their captions. Blank lines are skipped;
    a line without exactly one tab or without a caption, and an input unlike the first (an image
    among feature arrays, features of another width), fail naming the line."""
    paths: list[Path] = []
    inputs: list[np.ndarray] = []
    captions: list[list[str]] = []
    index: dict[Path, int] = {}
    for number, line in enumerate(iter_lines(listing), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise DataError(listing, "expected 'image<TAB>caption' (one tab, both fields non-empty)", line=number)
        path = resolve(fields[0].strip(), listing.parent)
        if path not in index:
            array = load_input(path, image_size, listing, number)
            if inputs and (input_kind(path) != input_kind(paths[0]) or array.shape[1:] != inputs[0].shape[1:]):
                raise DataError(
                    listing, f"{path} ({array.shape}) is not like {paths[0]} ({inputs[0].shape}) of line 1", number
                )
            index[path] = len(paths)
            paths.append(path)
            inputs.append(array)
            captions.append([])
        captions[index[path]].append(fields[1].strip())
    if not paths:
        raise DataError(listing, "no 'image<TAB>caption' lines")
    return CaptionSplit(paths, inputs, captions)


def resolve(path: str, directory: Path) -> Path:
    """A path as a listing names it: relative to the listing's directory, unless absolute."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else directory / candidate


@dataclass
class CaptionBatch(TensorBatch):
    """B images with one caption each (training), or all their captions as references (val/test)."""

    inputs: Tensor  # (B, 3, H, W) uint8 images, or (B, R, D) float features padded with zeros
    regions: Tensor | None  # (B,) long: feature vectors per example; None for images (the whole grid)
    target_in: Tensor  # (B, T) long: [<bos>] + caption ids, padded
    target_out: Tensor  # (B, T) long: caption ids + [<eos>], padded
    references: list[list[str]]  # every caption of each image (val/test; [] in training)
    indices: list[int]  # each example's position in its split
    num_tokens: int  # caption tokens, each <eos> included: what the loss is averaged over

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class EncodedCaption:
    inputs: np.ndarray
    ids: Sequence[int]
    references: tuple[str, ...]


class CollateCaptions:
    """[(index, EncodedCaption)] -> CaptionBatch."""

    def __init__(self, pad: int, bos: int, eos: int):
        self.pad, self.bos, self.eos = pad, bos, eos

    def __call__(self, examples: Sequence[tuple[int, EncodedCaption]]) -> CaptionBatch:
        captions = [example for _, example in examples]
        inputs, regions = stack_inputs([c.inputs for c in captions])
        target_in, target_out = teacher_forcing_targets([c.ids for c in captions], self.bos, self.eos, self.pad)
        return CaptionBatch(
            inputs=inputs,
            regions=regions,
            target_in=target_in,
            target_out=target_out,
            references=[list(c.references) for c in captions],
            indices=[index for index, _ in examples],
            num_tokens=sum(len(c.ids) + 1 for c in captions),
        )


@DATASETS.register("captions")
class CaptionData(TokenBudgetData):
    """Images (PNG/JPEG) or feature arrays (.npy) with captions: `image<TAB>caption` TSV files per split."""

    def __init__(
        self,
        train: str,
        val: str,
        test: str | None = None,
        root: str | None = None,
        image_size: PositiveInt = 64,
        max_tokens: PositiveInt = 1500,
        val_max_tokens: PositiveInt | None = None,
        max_length: MaxLength = 40,
        num_workers: NonNegativeInt = 0,
    ):
        super().__init__(max_tokens, val_max_tokens, num_workers)
        self.files = split_paths(dataset_directory(root, ""), train, val, test)
        self.image_size = image_size
        self.max_length = max_length

    def split_source(self, split: str) -> Path | None:
        return self.files[split]

    def read_split(self, split: str) -> CaptionSplit:
        return read_captions(self.files[split], self.image_size)

    def input_spec(self) -> dict[str, Any]:
        """What the image encoder reads: kind (image | features), size (colour channels or feature
        width) and the image side images are resized to (predict reads new images alike)."""
        train = self.read("train")
        kind = input_kind(train.paths[0])
        size = 3 if kind == "image" else int(train.inputs[0].shape[1])
        return {"kind": kind, "size": size, "image_size": self.image_size}

    # --- tokenizers --------------------------------------------------------------------------------
    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """One tokenizer, fitted on the training captions."""
        captions = (caption for per_image in self.read("train").captions for caption in per_image)
        return {"text": TOKENIZERS.build(config, "tokenizer").fit(captions)}

    def check_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        vocab = tokenizers["text"].vocab
        if None in (vocab.pad_id, vocab.bos_id, vocab.eos_id):
            raise ConfigError("captioning needs a tokenizer with <pad>, <bos> and <eos> (tokenizer.specials)")

    # --- encoding ----------------------------------------------------------------------------------
    def encode_split(self, split: str) -> list[EncodedCaption]:
        """Training: one example per caption; val/test: one per image, all its captions as references."""
        encode = self.tokenizers["text"].encode
        read = self.read(split)
        if split == "train":
            return [
                EncodedCaption(inputs, encode(caption)[: self.max_length - 1], ())
                for inputs, captions in zip(read.inputs, read.captions, strict=True)
                for caption in captions
            ]
        return [
            EncodedCaption(inputs, encode(captions[0])[: self.max_length - 1], tuple(captions))
            for inputs, captions in zip(read.inputs, read.captions, strict=True)
        ]

    def lengths(self, examples: list[EncodedCaption]) -> list[int]:
        return [len(example.ids) + 1 for example in examples]

    def collate(self) -> CollateCaptions:
        vocab = self.tokenizers["text"].vocab
        return CollateCaptions(vocab.pad_id, vocab.bos_id, vocab.eos_id)
