"""Datamodules for translation: parallel text -> token-budget batches of (source, target) ids.

`parallel` takes any files (a TSV of `source<TAB>target` lines, or two line-aligned files);
`multi30k` knows the Multi30k files under the data root. Tokenizers are fitted on the training
pairs only (one joint vocabulary for both sides by default). Each split is read and encoded once.

A batch (`TranslationBatch`) holds the source ids, the decoder input `[<bos>] + target` and the
decoder output `target + [<eos>]`, padded with <pad>, plus the raw lines (references for BLEU)
and each example's position in its file.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from seqtasks.data.batching import TRAIN_SEED, TokenBatchSampler, pad_sequences
from seqtasks.data.files import RemoteFile
from seqtasks.data.parallel import read_parallel, read_parallel_tsv
from seqtasks.errors import ConfigError
from seqtasks.registry import DATASETS, TOKENIZERS
from seqtasks.tokenizers.base import Tokenizer

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@rank_zero_only
def _warn(message: str, *args: Any) -> None:
    log.warning(message, *args)


@rank_zero_only
def _info(message: str, *args: Any) -> None:
    log.info(message, *args)


@dataclass
class TranslationBatch:
    """B sentence pairs. Padding is the target tokenizer's <pad> id (the source's in `source`)."""

    source: Tensor  # (B, S) long: source ids, padded
    source_lengths: Tensor  # (B,) long: unpadded source lengths (>= 1)
    target_in: Tensor  # (B, T) long: [<bos>] + target ids, padded
    target_out: Tensor  # (B, T) long: target ids + [<eos>], padded
    references: list[str]  # the raw target lines (untruncated)
    sources: list[str]  # the raw source lines
    indices: list[int]  # 0-based line of each pair in its split's file

    def __len__(self) -> int:
        return len(self.indices)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TranslationBatch:
        """A copy with the tensors on `device` (Lightning's batch transfer calls this)."""
        return dataclasses.replace(self, **{name: getattr(self, name).to(device, non_blocking=non_blocking)
                                            for name in ("source", "source_lengths", "target_in", "target_out")})

    def pin_memory(self) -> TranslationBatch:
        """A copy with the tensors in pinned memory (DataLoader(pin_memory=True) calls this)."""
        return dataclasses.replace(self, **{name: getattr(self, name).pin_memory()
                                            for name in ("source", "source_lengths", "target_in", "target_out")})


@dataclass
class EncodedPairs:
    """One split, read and encoded: ids already truncated to max_length."""

    source_ids: list[list[int]]
    target_ids: list[list[int]]
    sources: list[str]
    targets: list[str]
    indices: list[int]

    def lengths(self) -> list[int]:
        """Per pair, the larger padded length it needs: source, or target + 1 (<bos>/<eos>)."""
        return [max(len(s), len(t) + 1) for s, t in zip(self.source_ids, self.target_ids, strict=True)]


class _PairsDataset(Dataset):
    def __init__(self, pairs: EncodedPairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs.indices)

    def __getitem__(self, i: int) -> tuple[list[int], list[int], str, str, int]:
        p = self.pairs
        return p.source_ids[i], p.target_ids[i], p.sources[i], p.targets[i], p.indices[i]


class Collate:
    """Examples -> TranslationBatch (a plain object, so DataLoader workers can pickle it)."""

    def __init__(self, source_pad: int, target_pad: int, bos: int, eos: int):
        self.source_pad, self.target_pad, self.bos, self.eos = source_pad, target_pad, bos, eos

    def __call__(self, examples: Sequence[tuple[list[int], list[int], str, str, int]]) -> TranslationBatch:
        source_ids, target_ids, sources, targets, indices = zip(*examples, strict=True)
        source, lengths = pad_sequences(source_ids, self.source_pad)
        target_in, _ = pad_sequences([[self.bos, *t] for t in target_ids], self.target_pad)
        target_out, _ = pad_sequences([[*t, self.eos] for t in target_ids], self.target_pad)
        return TranslationBatch(source=source, source_lengths=lengths, target_in=target_in, target_out=target_out,
                                references=list(targets), sources=list(sources), indices=list(indices))


def _split_spec(split: str, value: Any) -> Path | tuple[Path, Path]:
    """A TSV path, or [source_file, target_file] -> Path or (Path, Path)."""
    if isinstance(value, str | Path) and str(value):
        return Path(value).expanduser()
    if (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
            and all(isinstance(v, str | Path) and str(v) for v in value)):
        return Path(value[0]).expanduser(), Path(value[1]).expanduser()
    raise ConfigError(
        f"data.{split} must be either one TSV file of 'source<TAB>target' lines "
        f"(data.{split}=pairs.tsv) or two line-aligned files [source_file, target_file] "
        f"(data.{split}=[{split}.de,{split}.en]); got {value!r}")


@DATASETS.register("parallel")
class ParallelData(L.LightningDataModule):
    """Sentence pairs for translation from your files: a TSV or two line-aligned files per split."""

    def __init__(
        self,
        train: str | list[str] | None = None,
        val: str | list[str] | None = None,
        test: str | list[str] | None = None,
        max_tokens: int = 4000,
        val_max_tokens: int | None = None,
        max_length: int = 100,
        joint_vocabulary: bool = True,
        num_workers: int = 0,
    ):
        super().__init__()
        if max_length < 2:
            raise ConfigError(f"data.max_length must be >= 2 (a target token plus <eos>), got {max_length}")
        if max_tokens < 1 or (val_max_tokens is not None and val_max_tokens < 1):
            raise ConfigError(f"data.max_tokens and data.val_max_tokens must be >= 1, got {max_tokens}, "
                              f"{val_max_tokens}")
        self.splits: dict[str, Any] = {"train": _split_spec("train", train), "val": _split_spec("val", val)}
        if test is not None:
            self.splits["test"] = _split_spec("test", test)
        self.max_tokens = max_tokens
        self.val_max_tokens = val_max_tokens or max_tokens
        self.max_length = max_length
        self.joint_vocabulary = joint_vocabulary
        self.num_workers = num_workers
        self.tokenizers: dict[str, Tokenizer] | None = None
        self._pairs: dict[str, list[tuple[str, str]]] = {}
        self._kept: dict[str, list[int]] = {}
        self._encoded: dict[str, EncodedPairs] = {}
        self._train_sampler: TokenBatchSampler | None = None

    # --- reading -----------------------------------------------------------------------------------
    @property
    def has_test(self) -> bool:
        return "test" in self.splits

    def split_files(self, split: str) -> Path | tuple[Path, Path]:
        """The split's TSV file, or its (source, target) files."""
        return self.splits[split]

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """The split's raw (source, target) lines, in file order (read once)."""
        if split not in self._pairs:
            files = self.split_files(split)
            self._pairs[split] = read_parallel(*files) if isinstance(files, tuple) else read_parallel_tsv(files)
        return self._pairs[split]

    def _usable(self, split: str) -> list[int]:
        """Positions of the pairs that are used: training drops pairs with an empty side; val/test
        drop pairs with an empty source (nothing to translate), keeping empty references."""
        if split in self._kept:
            return self._kept[split]
        pairs = self.pairs(split)
        if split == "train":
            keep = [i for i, (s, t) in enumerate(pairs) if s.strip() and t.strip()]
            what = "an empty side"
        else:
            keep = [i for i, (s, _) in enumerate(pairs) if s.strip()]
            what = "an empty source (not scored)"
        if len(keep) < len(pairs):
            _warn("dropped %d of %d %s pairs with %s", len(pairs) - len(keep), len(pairs), split, what)
        self._kept[split] = keep
        return keep

    # --- tokenizers --------------------------------------------------------------------------------
    def build_tokenizers(self, config: dict[str, Any]) -> dict[str, Tokenizer]:
        """Fit tokenizers on the training pairs only: one on both sides (data.joint_vocabulary=true,
        the same object for 'source' and 'target'), else one per side."""
        pairs = [self.pairs("train")[i] for i in self._usable("train")]
        sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
        if self.joint_vocabulary:
            joint = TOKENIZERS.build(config).fit(sources + targets)
            tokenizers = {"source": joint, "target": joint}
        else:
            tokenizers = {"source": TOKENIZERS.build(config).fit(sources),
                          "target": TOKENIZERS.build(config).fit(targets)}
        self.use_tokenizers(tokenizers)
        return tokenizers

    def use_tokenizers(self, tokenizers: dict[str, Tokenizer]) -> None:
        """Use already-fitted tokenizers ({'source': ..., 'target': ...}, e.g. from a checkpoint)."""
        target = tokenizers["target"].vocab
        if None in (target.pad_id, target.bos_id, target.eos_id) or tokenizers["source"].vocab.pad_id is None:
            raise ConfigError("translation needs tokenizers with <pad> (both sides) and <bos>, <eos> (target)")
        self.tokenizers = dict(tokenizers)
        self._encoded.clear()
        self._train_sampler = None

    # --- encoding ----------------------------------------------------------------------------------
    def encoded(self, split: str) -> EncodedPairs:
        """The split's usable pairs as ids, truncated to data.max_length (encoded once)."""
        if split in self._encoded:
            return self._encoded[split]
        if self.tokenizers is None:
            raise RuntimeError("no tokenizers: call build_tokenizers(config) or use_tokenizers(...) first")
        pairs, keep = self.pairs(split), self._usable(split)
        source_tok, target_tok = self.tokenizers["source"], self.tokenizers["target"]
        source_ids, target_ids = [], []
        cut_sources = cut_targets = cut_pairs = 0
        for i in keep:
            source, target = pairs[i]
            src, tgt = source_tok.encode(source), target_tok.encode(target)
            cut_sources += len(src) > self.max_length
            cut_targets += len(tgt) > self.max_length - 1
            cut_pairs += len(src) > self.max_length or len(tgt) > self.max_length - 1
            source_ids.append(src[:self.max_length] or [source_tok.vocab.unk_id])  # never 0 long: packing
            target_ids.append(tgt[:self.max_length - 1])
        if cut_pairs:
            _warn("truncated %d of %d %s sentences to data.max_length=%d tokens (%d sources, %d targets)",
                  cut_pairs, len(keep), split, self.max_length, cut_sources, cut_targets)
        self._encoded[split] = EncodedPairs(source_ids, target_ids, [pairs[i][0] for i in keep],
                                            [pairs[i][1] for i in keep], keep)
        return self._encoded[split]

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage or "", SPLITS)
        for split in wanted:
            if split in self.splits and self.tokenizers is not None:
                self.encoded(split)

    # --- loaders -----------------------------------------------------------------------------------
    def _collate(self) -> Collate:
        source, target = self.tokenizers["source"].vocab, self.tokenizers["target"].vocab
        return Collate(source.pad_id, target.pad_id, target.bos_id, target.eos_id)

    def _loader(self, split: str, sampler: TokenBatchSampler) -> DataLoader:
        return DataLoader(_PairsDataset(self.encoded(split)), batch_sampler=sampler, collate_fn=self._collate(),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        """Shuffled length buckets of <= data.max_tokens padded tokens (per device). The order is a
        function of the epoch: Lightning calls `set_epoch` on the sampler at each epoch start."""
        if self._train_sampler is None:
            self._train_sampler = TokenBatchSampler(self.encoded("train").lengths(), self.max_tokens,
                                                    shuffle=True, seed=TRAIN_SEED)
        if self.trainer is not None:
            self._train_sampler.set_epoch(self.trainer.current_epoch)
        return self._loader("train", self._train_sampler)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        """The test split's loader; an empty list when data.test is not set (Lightning then runs no test)."""
        return self._eval_loader("test") if self.has_test else []

    def _eval_loader(self, split: str) -> DataLoader:
        sampler = TokenBatchSampler(self.encoded(split).lengths(), self.val_max_tokens, shuffle=False)
        return self._loader(split, sampler)


MULTI30K_LANGUAGES = ("de", "en", "fr")


@DATASETS.register("multi30k")
class Multi30k(ParallelData):
    """Multi30k image-description translations (de/en/fr; 29,000 train, 1,014 val, 1,000 test pairs)."""

    def __init__(
        self,
        root: str | None = None,
        source_lang: str = "de",
        target_lang: str = "en",
        test_set: str | None = "test_2016_flickr",
        **options: Any,
    ):
        for key, lang in (("source_lang", source_lang), ("target_lang", target_lang)):
            if lang not in MULTI30K_LANGUAGES:
                raise ConfigError(f"data.{key}={lang!r} is not a Multi30k language; "
                                  f"choose from: {', '.join(MULTI30K_LANGUAGES)}")
        if source_lang == target_lang:
            raise ConfigError(f"data.source_lang and data.target_lang are both {source_lang!r}; choose two "
                              f"different languages from: {', '.join(MULTI30K_LANGUAGES)}")
        given = [key for key in ("train", "val") if key in options]
        if given:
            raise ConfigError(f"dataset 'multi30k' knows its files; data.{given[0]} cannot be set "
                              "(use data=parallel for your own files)")
        # data.test (a TSV or [source, reference] files of your own) replaces the test set, so
        # `seqtasks.evaluate test=...` scores a Multi30k model on data it has never seen.
        own_test = options.pop("test", None)
        self.root = root
        self.source_lang, self.target_lang = source_lang, target_lang
        self.test_set = test_set
        names = {"train": "train", "val": "val", "test": test_set}
        files = {split: [f"multi30k/{name}.{source_lang}.gz", f"multi30k/{name}.{target_lang}.gz"]
                 for split, name in names.items() if name}
        super().__init__(train=files["train"], val=files["val"], test=own_test or files.get("test"), **options)
        self.own_test = own_test is not None

    def split_files(self, split: str) -> tuple[Path, Path]:
        """<root>/multi30k/<split>.<lang>.gz for both languages; a missing file names the expected path."""
        if split == "test" and self.own_test:
            return self.splits[split]
        return tuple(RemoteFile(str(relative)).locate(self.root) for relative in self.splits[split])
