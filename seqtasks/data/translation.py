"""Datamodules for translation: parallel text -> token-budget batches of (source, target) ids.

`parallel` takes any files (a TSV of `source<TAB>target` lines, or two line-aligned files);
`multi30k` knows the Multi30k files under the data root, and downloads missing ones. Tokenizers are
fitted on the training pairs only (one joint vocabulary for both sides by default). Each split is
read and encoded once.

A batch (`TranslationBatch`) holds the source ids, the decoder input `[<bos>] + target` and the
decoder output `target + [<eos>]`, padded with <pad>, plus the raw target lines (references for
BLEU) and each example's position in its split.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from torch import Tensor

from seqtasks.configuration.registry import DATASETS, TOKENIZERS
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt, Range
from seqtasks.data.base import TokenBudgetData
from seqtasks.data.batching import TensorBatch, pad_sequences, teacher_forcing_targets
from seqtasks.data.catalogue import locate
from seqtasks.data.parallel import ParallelCorpus
from seqtasks.data.ragged import Ragged, RaggedBuilder
from seqtasks.errors import ConfigError
from seqtasks.tokenizers.base import Tokenizer

log = logging.getLogger(__name__)

MaxLength = Annotated[int, Range(low=2)]  # a target token plus <eos>


@rank_zero_only
def _warn(message: str, *args: Any) -> None:
    log.warning(message, *args)


@dataclass
class TranslationBatch(TensorBatch):
    """B sentence pairs. Padding is the target tokenizer's <pad> id (the source's in `source`)."""

    source: Tensor  # (B, S) long: source ids, padded
    source_lengths: Tensor  # (B,) long: unpadded source lengths (>= 1)
    target_in: Tensor  # (B, T) long: [<bos>] + target ids, padded
    target_out: Tensor  # (B, T) long: target ids + [<eos>], padded
    references: list[str]  # the raw target lines (untruncated)
    indices: list[int]  # position of each pair among its split's used pairs
    num_tokens: int  # target tokens, each <eos> included: what the loss is averaged over

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class EncodedPair:
    """One pair as ids (truncated to max_length) and its raw reference ('' for training pairs)."""

    source_ids: Sequence[int]
    target_ids: Sequence[int]
    reference: str


@dataclass
class EncodedPairs:
    """A split as ids: source and target rows (Ragged), and the raw references of val/test pairs
    (training keeps no text)."""

    source: Ragged
    target: Ragged
    references: list[str] | None

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> EncodedPair:
        return EncodedPair(self.source[i], self.target[i], self.references[i] if self.references is not None else "")

    def lengths(self) -> list[int]:
        """Per pair, the larger padded length it needs: source, or target + 1 (<bos>/<eos>)."""
        return np.maximum(self.source.lengths(), self.target.lengths() + 1).tolist()


class CollatePairs:
    """[(index, EncodedPair)] -> TranslationBatch."""

    def __init__(self, source_pad: int, target_pad: int, bos: int, eos: int):
        self.source_pad, self.target_pad, self.bos, self.eos = source_pad, target_pad, bos, eos

    def __call__(self, examples: Sequence[tuple[int, EncodedPair]]) -> TranslationBatch:
        pairs = [pair for _, pair in examples]
        source, lengths = pad_sequences([p.source_ids for p in pairs], self.source_pad)
        target_in, target_out = teacher_forcing_targets(
            [p.target_ids for p in pairs], self.bos, self.eos, self.target_pad
        )
        return TranslationBatch(
            source=source,
            source_lengths=lengths,
            target_in=target_in,
            target_out=target_out,
            references=[p.reference for p in pairs],
            indices=[index for index, _ in examples],
            num_tokens=sum(len(p.target_ids) + 1 for p in pairs),
        )


def _split_spec(split: str, value: Any) -> Path | tuple[Path, Path]:
    """A TSV path, or [source_file, target_file] -> Path or (Path, Path)."""
    if isinstance(value, str | Path) and str(value):
        return Path(value).expanduser()
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, str | Path) and str(v) for v in value)
    ):
        return Path(value[0]).expanduser(), Path(value[1]).expanduser()
    raise ConfigError(
        f"data.{split} must be either one TSV file of 'source<TAB>target' lines "
        f"(data.{split}=pairs.tsv) or two line-aligned files [source_file, target_file] "
        f"(data.{split}=[{split}.de,{split}.en]); got {value!r}"
    )


@DATASETS.register("parallel")
class ParallelData(TokenBudgetData):
    """Sentence pairs for translation from your files: a TSV or two line-aligned files per split."""

    def __init__(
        self,
        train: str | list[str] | None = None,
        val: str | list[str] | None = None,
        test: str | list[str] | None = None,
        max_tokens: PositiveInt = 4000,
        val_max_tokens: PositiveInt | None = None,
        max_length: MaxLength = 100,
        joint_vocabulary: bool = True,
        num_workers: NonNegativeInt = 0,
    ):
        super().__init__(max_tokens, val_max_tokens, num_workers)
        self.splits: dict[str, Any] = {
            "train": _split_spec("train", train),
            "val": _split_spec("val", val),
            "test": None if test is None else _split_spec("test", test),
        }
        self.max_length = max_length
        self.joint_vocabulary = joint_vocabulary

    # --- reading -----------------------------------------------------------------------------------
    def split_source(self, split: str) -> Path | tuple[Path, Path] | None:
        """The split's TSV file, or its (source, target) files."""
        return self.splits[split]

    def split_files(self, split: str) -> Path | tuple[Path, Path]:
        """The files to read for a split (datasets that know their files find them here)."""
        return self.splits[split]

    def read_split(self, split: str) -> ParallelCorpus:
        """The split's raw (source, target) lines, in file order, streamed."""
        return ParallelCorpus(self.split_files(split))

    def usable(self, split: str, dropped: list[int] | None = None) -> Iterator[tuple[str, str]]:
        """The pairs that are used: training drops pairs with an empty side; val/test drop pairs with
        an empty source (nothing to translate), keeping empty references. `dropped` counts the others."""
        for source, target in self.read(split):
            if source.strip() and (target.strip() or split != "train"):
                yield source, target
            elif dropped is not None:
                dropped.append(1)

    # --- tokenizers --------------------------------------------------------------------------------
    def fit_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """Fit tokenizers on the training pairs only: one on both sides (data.joint_vocabulary=true,
        the same object for 'source' and 'target'), else one per side."""

        def sources() -> Iterator[str]:
            return (s for s, _ in self.usable("train"))

        def targets() -> Iterator[str]:
            return (t for _, t in self.usable("train"))

        if self.joint_vocabulary:  # all sources, then all targets: two streamed passes
            joint = TOKENIZERS.build(config, "tokenizer").fit(chain(sources(), targets()))
            return {"source": joint, "target": joint}
        return {
            "source": TOKENIZERS.build(config, "tokenizer").fit(sources()),
            "target": TOKENIZERS.build(config, "tokenizer").fit(targets()),
        }

    def check_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        target = tokenizers["target"].vocab
        if None in (target.pad_id, target.bos_id, target.eos_id) or tokenizers["source"].vocab.pad_id is None:
            raise ConfigError("translation needs tokenizers with <pad> (both sides) and <bos>, <eos> (target)")

    # --- encoding ----------------------------------------------------------------------------------
    def encode_split(self, split: str) -> EncodedPairs:
        """The split's usable pairs as ids, truncated to data.max_length, in one streamed pass."""
        source_tok, target_tok = self.tokenizers["source"], self.tokenizers["target"]
        sources, targets, references, dropped = RaggedBuilder(), RaggedBuilder(), [], []
        cut_sources = cut_targets = cut_pairs = 0
        for source, target in self.usable(split, dropped):
            src, tgt = source_tok.encode(source), target_tok.encode(target)
            cut_sources += len(src) > self.max_length
            cut_targets += len(tgt) > self.max_length - 1
            cut_pairs += len(src) > self.max_length or len(tgt) > self.max_length - 1
            sources.append(src[: self.max_length] or [source_tok.vocab.unk_id])  # never 0 long: packing
            targets.append(tgt[: self.max_length - 1])
            if split != "train":
                references.append(target)
        encoded = EncodedPairs(sources.build(), targets.build(), references if split != "train" else None)
        if dropped:
            what = "an empty side" if split == "train" else "an empty source (not scored)"
            _warn("dropped %d of %d %s pairs with %s", len(dropped), len(encoded) + len(dropped), split, what)
        if cut_pairs:
            _warn(
                "truncated %d of %d %s sentences to data.max_length=%d tokens (%d sources, %d targets)",
                cut_pairs,
                len(encoded),
                split,
                self.max_length,
                cut_sources,
                cut_targets,
            )
        return encoded

    def lengths(self, examples: EncodedPairs) -> list[int]:
        return examples.lengths()

    def collate(self) -> CollatePairs:
        source, target = self.tokenizers["source"].vocab, self.tokenizers["target"].vocab
        return CollatePairs(source.pad_id, target.pad_id, target.bos_id, target.eos_id)


MULTI30K_LANGUAGES = ("de", "en", "fr")
Multi30kLanguage = Literal["de", "en", "fr"]


@DATASETS.register("multi30k")
class Multi30k(ParallelData):
    """Multi30k image-description translations (de/en/fr; 29,000 train, 1,014 val, 1,000 test pairs).

    `data.test` (a TSV or [source, reference] files of your own) replaces the test set, so
    `seqtasks.evaluate test=...` scores a Multi30k model on data it has never seen."""

    def __init__(
        self,
        root: str | None = None,
        source_lang: Multi30kLanguage = "de",
        target_lang: Multi30kLanguage = "en",
        test_set: str | None = "test_2016_flickr",
        test: str | list[str] | None = None,
        download: bool = True,
        **options: Any,
    ):
        if source_lang == target_lang:
            raise ConfigError(
                f"data.source_lang and data.target_lang are both {source_lang!r}; choose two "
                f"different languages from: {', '.join(MULTI30K_LANGUAGES)}"
            )
        given = [key for key in ("train", "val") if key in options]
        if given:
            raise ConfigError(
                f"dataset 'multi30k' knows its files; data.{given[0]} cannot be set "
                "(use data=parallel for your own files)"
            )
        self.root, self.download = root, download
        self.source_lang, self.target_lang = source_lang, target_lang
        self.test_set = test_set
        names = {"train": "train", "val": "val", "test": test_set}
        files = {
            split: [f"multi30k/{name}.{source_lang}.gz", f"multi30k/{name}.{target_lang}.gz"]
            for split, name in names.items()
            if name
        }
        super().__init__(train=files["train"], val=files["val"], test=test or files.get("test"), **options)
        self.own_test = test is not None

    def split_files(self, split: str) -> Path | tuple[Path, Path]:
        """<root>/multi30k/<split>.<lang>.gz for both languages, downloaded when missing (unless
        data.download=false); a missing file that cannot be fetched names the expected path."""
        if split == "test" and self.own_test:
            return self.splits[split]
        return tuple(locate(path, self.root, self.download) for path in self.splits[split])
