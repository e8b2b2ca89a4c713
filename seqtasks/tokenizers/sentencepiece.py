"""Subword tokenizer: a sentencepiece model (unigram, BPE, char or word) learned from the training text.

Trained in memory (no temporary files) with the project's special tokens at fixed ids:
<pad>=0, <unk>=1, <bos>=2, <eos>=3, so `vocab.pad_id/unk_id/bos_id/eos_id` are 0/1/2/3 as with the
char tokenizer. The serialized model (base64) is the state a checkpoint carries; `save()` also
writes the native `.model` file that `sentencepiece.SentencePieceProcessor(model_file=...)` loads.

`vocab_size` is an upper bound (sentencepiece's `hard_vocab_limit=false`): a training text too
small for it yields fewer pieces, with a warning that says how many, instead of failing; the
vocabulary size then flows forward to the model as usual.
"""

from __future__ import annotations

import base64
import io
import logging
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import sentencepiece as spm
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from tqdm import tqdm

from seqtasks.configuration.registry import TOKENIZERS
from seqtasks.configuration.validation import NonNegativeInt, Range
from seqtasks.errors import ConfigError
from seqtasks.runtime.atomic import atomic_write
from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab

log = logging.getLogger(__name__)


def reservoir(items: Iterable[str], size: float, seed: int = 0) -> tuple[list[str], int]:
    """At most `size` items drawn uniformly from a stream (Algorithm R, seeded), in stream order when
    all fit -> (sample, how many there were)."""
    rng, sample, count = random.Random(seed), [], 0
    for count, item in enumerate(items, start=1):
        if len(sample) < size:
            sample.append(item)
        elif (j := rng.randrange(count)) < size:
            sample[j] = item
    return sample, count


ModelType = Literal["unigram", "bpe", "char", "word"]
Coverage = Annotated[float, Range(low=0, high=1, low_open=True)]  # in (0, 1]
VocabularySize = Annotated[int, Range(low=len(SPECIALS) + 1)]


@TOKENIZERS.register("sentencepiece")
class SentencePieceTokenizer(Tokenizer):
    """Sentencepiece subwords (unigram/BPE/char/word) learned from the training text; <pad> <unk> <bos> <eos> = 0-3."""

    specials = list(SPECIALS)  # always the model's first pieces (ids 0-3), fixed at fitting

    def __init__(
        self,
        vocab_size: VocabularySize = 8000,
        model_type: ModelType = "unigram",
        character_coverage: Coverage = 1.0,
        input_sentence_size: NonNegativeInt = 2_000_000,
    ):
        self.vocab_size = vocab_size
        self.model_type = model_type
        self.character_coverage = float(character_coverage)
        self.input_sentence_size = input_sentence_size
        self.vocab = Vocab(SPECIALS)
        self._processor: spm.SentencePieceProcessor | None = None

    # --- training ----------------------------------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> SentencePieceTokenizer:
        """Learn the model from `texts`: each line of each text is one training sentence (blank
        lines are skipped). A text of more than `input_sentence_size` sentences is sampled down to
        that many (reservoir sampling from a fixed seed, in one streamed pass: deterministic, and
        memory bounded by the sample); a smaller one is used whole, in order."""
        lines = (line for text in texts for line in text.split("\n") if line.strip())
        progress = tqdm(
            lines,
            desc="sentencepiece: reading sentences",
            unit=" sentences",
            mininterval=2,
            disable=None if rank_zero_only.rank == 0 else True,
        )  # None: a bar on a terminal only
        sample, count = reservoir(progress, self.input_sentence_size or float("inf"))
        if count > len(sample):
            log.info("sentencepiece: fitted on %d of %d sentences (tokenizer.input_sentence_size)", len(sample), count)
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sample),
                model_writer=model,
                vocab_size=self.vocab_size,
                model_type=self.model_type,
                character_coverage=self.character_coverage,
                hard_vocab_limit=False,
                input_sentence_size=0,  # all of the sample above
                pad_id=0,
                unk_id=1,
                bos_id=2,
                eos_id=3,
                pad_piece=PAD,
                unk_piece=UNK,
                bos_piece=BOS,
                eos_piece=EOS,
                minloglevel=2,  # quiet: errors only (and those raise)
            )
        except RuntimeError as error:
            raise self._training_error(str(error), count) from None
        self._load(model.getvalue())
        if len(self.vocab) < self.vocab_size and self.model_type != "char":
            log.warning(
                "tokenizer.vocab_size=%d, but the training text (%d sentences) yields only %d %s pieces; "
                "the vocabulary has %d",
                self.vocab_size,
                count,
                len(self.vocab),
                self.model_type,
                len(self.vocab),
            )
        return self

    def _training_error(self, message: str, count: int) -> ConfigError:
        if count == 0:
            return ConfigError("tokenizer 'sentencepiece' got no training text (no non-blank lines)")
        if match := re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message):
            needed = int(match.group(2)) + len(SPECIALS)
            return ConfigError(
                f"tokenizer.vocab_size={self.vocab_size} is too small: the training text has {match.group(2)} "
                f"distinct characters (at tokenizer.character_coverage={self.character_coverage}); set "
                f"tokenizer.vocab_size={needed} or more, or lower tokenizer.character_coverage"
            )
        detail = message.split("] ", 1)[-1].strip()
        return ConfigError(f"sentencepiece training failed on {count} sentences: {detail}")

    def _load(self, model: bytes) -> None:
        processor = spm.SentencePieceProcessor(model_proto=model)
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        if tuple(pieces[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"sentencepiece model does not start with {', '.join(SPECIALS)}: {pieces[:4]}")
        self._processor = processor
        self.vocab = Vocab(pieces)

    @property
    def processor(self) -> spm.SentencePieceProcessor:
        if self._processor is None:
            raise RuntimeError("the sentencepiece tokenizer is not fitted: call fit() or Tokenizer.from_state() first")
        return self._processor

    def model_bytes(self) -> bytes:
        """The serialized model proto (the content of a `.model` file)."""
        return self.processor.serialized_model_proto()

    # --- use ---------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Piece ids of `text`, without <bos>/<eos>. Characters never seen in training become <unk>."""
        return self.processor.encode(text, out_type=int)

    def decode(self, ids: Iterable[int]) -> str:
        """Detokenised text; the special ids (<pad>, <unk>, <bos>, <eos>: 0-3) are dropped."""
        specials = len(SPECIALS)
        return self.processor.decode([i for i in map(int, ids) if i >= specials])

    # --- persistence -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "name": "sentencepiece",
            "vocab_size": self.vocab_size,
            "model_type": self.model_type,
            "character_coverage": self.character_coverage,
            "input_sentence_size": self.input_sentence_size,
            "model": base64.b64encode(self.model_bytes()).decode("ascii"),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> SentencePieceTokenizer:
        tokenizer = cls(
            vocab_size=state["vocab_size"],
            model_type=state["model_type"],
            character_coverage=state["character_coverage"],
            input_sentence_size=state.get("input_sentence_size", 0),
        )
        tokenizer._load(base64.b64decode(state["model"]))
        return tokenizer

    def save(self, directory: Path, name: str) -> list[Path]:
        """`<name>.model` (sentencepiece's own model file) and `<name>.vocab` (`piece<TAB>score` lines)."""
        directory = Path(directory)
        model, vocab = directory / f"{name}.model", directory / f"{name}.vocab"
        with atomic_write(model) as f:
            f.write(self.model_bytes())
        lines = "".join(
            f"{self.processor.id_to_piece(i)}\t{self.processor.get_score(i):g}\n" for i in range(len(self.vocab))
        )
        with atomic_write(vocab) as f:
            f.write(lines.encode("utf-8"))
        return [model, vocab]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers and deepcopy: carry the model bytes, not the C++ processor.
        return {
            "options": (self.vocab_size, self.model_type, self.character_coverage, self.input_sentence_size),
            "model": self.model_bytes() if self._processor is not None else None,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(*state["options"])
        if state["model"] is not None:
            self._load(state["model"])
