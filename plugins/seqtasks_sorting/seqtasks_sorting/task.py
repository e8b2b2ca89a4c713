"""`task=sorting`: write a sequence of integers in sorted order, many-to-many synced (one output
token per input position, since sorting keeps the length).

tokens -> embedding -> dropout -> encoder (any registered RNN; bidirectional, since position i's
output is the i-th smallest of the whole sequence) -> tagging head (softmax_tagger | crf_tagger)
whose "tags" are the same vocabulary as the input

Everything but the embedding comes from seqtasks' registries. Validation and test record every
sequence's (gold, predicted) ids and report the token accuracy `acc`, the share of sequences
sorted exactly right `exact`, and the loss (it selects the checkpoint).
"""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor, nn

from seqtasks.configuration.registry import TASKS
from seqtasks.configuration.validation import PositiveInt, Rate
from seqtasks.data.batching import length_sorted_chunks, pad_sequences
from seqtasks.heads.tagger import TaggerHead
from seqtasks.metrics import loss_scores
from seqtasks.tasks.base import PredictOptions, SeqTask
from seqtasks.tensors import lengths_mask
from seqtasks_sorting.data import SortingBatch, check_tokenizers

log = logging.getLogger(__name__)


@TASKS.register("sorting")
class SortingTask(SeqTask):
    """Sequence sorting (many-to-many, synced): the i-th smallest token at position i (plugin seqtasks-sorting)."""

    # Checkpoints are chosen by loss, not by `exact`: exact reaches 1.0 early on easy settings, and a
    # tie keeps the earliest checkpoint.
    monitor = ("val/loss", "min")
    metrics = ("acc", "exact", "loss")  # what `score` returns: checkpoint.monitor may name any, checked before training
    headline = ("acc", "exact")
    head_sort = TaggerHead  # head=softmax_tagger | crf_tagger: one output per position

    def __init__(
        self,
        encoder: dict,
        head: dict,
        embedding_dim: PositiveInt = 32,
        dropout: Rate = 0.0,
        **shared: Any,
    ):
        super().__init__(**shared)
        check_tokenizers(self.tokenizers)
        self.tokenizer = self.tokenizers["tokens"]
        vocab = self.tokenizer.vocab
        self.embedding = nn.Embedding(len(vocab), embedding_dim, padding_idx=vocab.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.encoder = self.build_encoder(encoder, input_size=embedding_dim)
        # Outputs are input tokens: one tag per vocabulary entry (the specials are never a target).
        self.head = self.build_head(head, input_size=self.encoder.output_size, num_tags=len(vocab))

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (B, T), lengths (B,) -> encoder states (B, T, H)."""
        states, _ = self.encoder(self.dropout(self.embedding(tokens)), lengths)  # (B, T, E) -> (B, T, H)
        return states

    def training_loss(self, batch: SortingBatch) -> Tensor:
        return self.head.loss(self(batch.tokens, batch.lengths), batch.targets, batch.mask)

    def evaluate(self, batch: SortingBatch, stage: str) -> dict[int, tuple[Tensor, Tensor, float]]:
        """index -> (gold (n,), predicted (n,), the sequence's share of the batch loss x n)."""
        states, mask = self(batch.tokens, batch.lengths), batch.mask  # (B, T, H), (B, T)
        # The head's loss is a mean over the batch's tokens; each sequence carries its tokens' part.
        loss = float(self.head.loss(states, batch.targets, mask)) * int(mask.sum())
        predicted, gold = self.head.decode(states, mask).cpu(), batch.targets.cpu()  # (B, T) each
        lengths = batch.lengths.tolist()
        total = sum(lengths)
        return {
            index: (gold[row, :n], predicted[row, :n], loss * n / total)
            for row, (index, n) in enumerate(zip(batch.indices, lengths, strict=True))
        }

    def score(self, records: list[tuple[Tensor, Tensor, float]], stage: str) -> dict[str, float]:
        gold, predicted, loss = zip(*records, strict=True)
        right = [g == p for g, p in zip(gold, predicted, strict=True)]  # per sequence, (n,) bool
        tokens = sum(len(r) for r in right)
        return {
            "acc": sum(int(r.sum()) for r in right) / tokens,
            "exact": sum(bool(r.all()) for r in right) / len(right),
            "loss": loss_scores(sum(loss), tokens)["loss"],
        }

    # --- prediction ------------------------------------------------------------------------------
    def sort_lines(self, lines: list[str], batch_size: int = 64) -> list[str]:
        """The model's sorted version of each line (tokens space-separated); an empty line stays empty."""
        with self.inference():
            vocab = self.tokenizer.vocab
            encoded = [self.tokenizer.encode(line) for line in lines]
            unknown = sum(vocab.unk_id in ids for ids in encoded)
            if unknown:
                log.warning("%d of %d lines hold tokens training never saw (read as <unk>)", unknown, len(lines))
            results = [""] * len(lines)
            for rows in length_sorted_chunks(encoded, batch_size):  # non-empty lines, similar lengths together
                tokens, lengths = pad_sequences([encoded[i] for i in rows], vocab.pad_id, self.device)  # (B, T), (B,)
                mask = lengths_mask(lengths, tokens.shape[1])  # (B, T)
                predicted = self.head.decode(self(tokens, lengths), mask).tolist()  # (B, T), -1 at padding
                for i, ids, n in zip(rows, predicted, lengths.tolist(), strict=True):
                    results[i] = " ".join(vocab.tokens[t] for t in ids[:n])
            return results

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """One output line per input line: the model's sorted sequence, as many tokens as the input."""
        return self.sort_lines(self.require_input(lines, "sorts lines"), options.batch_size)
