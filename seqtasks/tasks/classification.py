"""Classification, many-to-one: a label for a whole sequence (a surname's language, a sentence's
sentiment).

tokens -> embedding -> encoder (packed, any registered RNN) -> classifier head (pooling) -> logits
       (+ the logits of a bag of hashed token n-grams, with ngram_order > 0: seqtasks/heads/ngram_bag.py)

Validation and test record every example's (true label, predicted label, NLL) and report
accuracy, macro-F1 and per-class precision/recall/F1 from the confusion matrix of all ranks'
examples; val/acc selects the checkpoint. At test time the confusion matrix is also drawn,
logged as an image and saved as confusion_matrix.png in the run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.analysis.figures import confusion_figure
from seqtasks.configuration.registry import TASKS
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt, Rate
from seqtasks.data.batching import length_sorted_chunks, pad_sequences
from seqtasks.data.classification import ClassificationBatch
from seqtasks.heads.classifier import SequenceClassifier
from seqtasks.heads.ngram_bag import NgramBag
from seqtasks.metrics import classification_scores, confusion_matrix, loss_scores
from seqtasks.regularization import word_dropout
from seqtasks.runtime.dashboards import send_figure
from seqtasks.tasks.base import PredictOptions, SeqTask


@TASKS.register("classification")
class ClassificationTask(SeqTask):
    """Sequence classification (many-to-one): encoder states pooled into one label; accuracy, macro-F1."""

    monitor = ("val/acc", "max")
    metrics = ("acc", "macro_f1", "loss", "precision/<label>", "recall/<label>", "f1/<label>")
    headline = ("acc", "macro_f1")
    head_sort = SequenceClassifier
    # Where test saves its confusion matrix, under the trainer's directory: the run's in training;
    # evaluate names it after its output= (None: drawn for the loggers only, no file).
    confusion_matrix_file: str | None = "confusion_matrix.png"

    def __init__(
        self,
        encoder: dict,
        head: dict,
        embedding_dim: PositiveInt = 64,
        dropout: Rate = 0.1,
        word_dropout: Rate = 0.0,
        ngram_order: NonNegativeInt = 0,
        ngram_buckets: PositiveInt = 262_144,
        ngram_dim: PositiveInt = 32,
        label_smoothing: Rate = 0.0,
        **shared: Any,
    ):
        super().__init__(**shared)
        self.word_dropout = word_dropout
        self.label_smoothing = label_smoothing
        self.text_tokenizer = self.tokenizers["text"]
        self.labels = self.tokenizers["labels"].vocab.tokens
        self.embedding = nn.Embedding(
            len(self.text_tokenizer), embedding_dim, padding_idx=self.text_tokenizer.vocab.pad_id
        )
        self.dropout = nn.Dropout(dropout)
        self.encoder = self.build_encoder(encoder, input_size=embedding_dim)
        self.head = self.build_head(
            head,
            input_size=self.encoder.output_size,
            num_classes=len(self.labels),
            num_directions=self.encoder.num_directions,
        )
        self.ngrams = (
            NgramBag(len(self.text_tokenizer), len(self.labels), ngram_order, ngram_buckets, ngram_dim)
            if ngram_order
            else None
        )

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (B, T), lengths (B,) -> class logits (B, C)."""
        if self.training:
            vocab = self.text_tokenizer.vocab
            tokens = word_dropout(tokens, self.word_dropout, vocab.unk_id, tokens != vocab.pad_id)
        states, _ = self.encoder(self.dropout(self.embedding(tokens)), lengths)  # (B, T, H)
        logits = self.head(states, lengths)  # (B, C)
        return logits if self.ngrams is None else logits + self.ngrams(tokens, lengths)

    def training_loss(self, batch: ClassificationBatch) -> Tensor:
        logits = self(batch.tokens, batch.lengths).float()  # (B, C)
        return F.cross_entropy(logits, batch.labels, label_smoothing=self.label_smoothing)

    def evaluate(self, batch: ClassificationBatch, stage: str) -> dict[int, tuple[int, int, float]]:
        logits = self(batch.tokens, batch.lengths).float()  # (B, C)
        nll = F.cross_entropy(logits, batch.labels, reduction="none")  # (B,)
        rows = zip(batch.labels.tolist(), logits.argmax(-1).tolist(), nll.tolist(), strict=True)
        return dict(zip(batch.indices, rows, strict=True))  # index -> (true, predicted, nll)

    def score(self, records: list[tuple[int, int, float]], stage: str) -> dict[str, float]:
        gold, predicted, nll = zip(*records, strict=True)
        confusion = confusion_matrix(torch.tensor(gold), torch.tensor(predicted), len(self.labels))
        return {**classification_scores(confusion, self.labels), "loss": loss_scores(sum(nll), len(nll))["loss"]}

    def scored(self, stage: str, records: list[tuple[int, int, float]], scores: dict[str, float]) -> None:
        if stage != "test" or not self.trainer.is_global_zero:
            return
        gold, predicted, _ = zip(*records, strict=True)
        figure = confusion_figure(
            confusion_matrix(torch.tensor(gold), torch.tensor(predicted), len(self.labels)), self.labels
        )
        path = None
        if self.confusion_matrix_file is not None:
            path = Path(self.trainer.default_root_dir) / self.confusion_matrix_file
            figure.savefig(path, dpi=100)
        send_figure(self.trainer.loggers, "test/confusion_matrix", figure, self.global_step, path)

    # --- prediction ------------------------------------------------------------------------------
    def classify(self, texts: list[str], batch_size: int = 64) -> list[tuple[str, float] | None]:
        """The most probable label of each text and its probability; None for an empty text."""
        with self.inference():
            encoded = [self.text_tokenizer.encode(text) if text.strip() else [] for text in texts]
            results: list[tuple[str, float] | None] = [None] * len(texts)
            for rows in length_sorted_chunks(encoded, batch_size):
                tokens, lengths = pad_sequences(
                    [encoded[i] for i in rows], self.text_tokenizer.vocab.pad_id, self.device
                )
                probabilities, labels = self(tokens, lengths).float().softmax(-1).max(-1)  # (B,) each
                for i, label, probability in zip(rows, labels.tolist(), probabilities.tolist(), strict=True):
                    results[i] = (self.labels[label], probability)
            return results

    def predict_labels(self, texts: list[str]) -> list[str]:
        """The most probable label of each text ('' for an empty text): a `Classify` callable."""
        return [result[0] if result is not None else "" for result in self.classify(texts)]

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """label<TAB>probability per line; an empty line stays empty, so outputs align with inputs."""
        lines = self.require_input(lines, "classifies lines")
        return [
            "" if result is None else f"{result[0]}\t{result[1]:.4f}"
            for result in self.classify(lines, batch_size=options.batch_size)
        ]
