"""Classification, many-to-one: a label for a whole sequence (a surname's language, a sentence's
sentiment).

tokens -> embedding -> encoder (packed, any registered RNN) -> classifier head (pooling) -> logits

Validation and test accumulate a confusion matrix (summed over DDP ranks) and report accuracy,
macro-F1 and per-class precision/recall/F1; val/acc selects the checkpoint. At test time the
confusion matrix is also drawn, logged as an image and saved as confusion_matrix.png in the run
directory.
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.data.batching import length_sorted_chunks, pad_sequences
from seqtasks.errors import ConfigError
from seqtasks.metrics import classification_scores
from seqtasks.registry import ENCODERS, HEADS, TASKS
from seqtasks.regularization import word_dropout
from seqtasks.tasks.base import SeqTask
from seqtasks.tokenizers.base import Tokenizer


def confusion_figure(confusion: Tensor, labels: list[str]) -> Figure:
    """Rows: true class, columns: predicted; each row normalised to 1, counts written in the cells."""
    rates = confusion.float() / confusion.sum(1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.45 * len(labels) + 2)
    figure = Figure(figsize=(size, size))
    axes = figure.add_subplot()
    axes.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, column), count in zip(torch.cartesian_prod(torch.arange(len(labels)), torch.arange(len(labels))).tolist(),
                                    confusion.flatten().tolist(), strict=True):
        if count:
            axes.text(column, row, str(count), ha="center", va="center", fontsize=6,
                      color="white" if rates[row, column] > 0.5 else "black")
    figure.tight_layout()
    return figure


@TASKS.register("classification")
class ClassificationTask(SeqTask):
    """Sequence classification (many-to-one): encoder states pooled into one label; accuracy, macro-F1."""

    monitor = ("val/acc", "max")

    def __init__(
        self,
        tokenizers: dict[str, dict],
        encoder: dict,
        head: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        embedding_dim: int = 64,
        dropout: float = 0.0,
        word_dropout: float = 0.0,
        nonfinite_loss: str = "raise",
        plugins: list[str] | None = None,
    ):
        super().__init__(optimizer, scheduler, nonfinite_loss, plugins)
        if not 0.0 <= word_dropout < 1.0:
            raise ConfigError(f"task.word_dropout must be in [0, 1), got {word_dropout}")
        self.save_hyperparameters(logger=False)
        self.word_dropout = word_dropout
        self.text_tokenizer = Tokenizer.from_state(tokenizers["text"])
        self.labels = Tokenizer.from_state(tokenizers["labels"]).vocab.tokens
        self.embedding = nn.Embedding(len(self.text_tokenizer), embedding_dim,
                                      padding_idx=self.text_tokenizer.vocab.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.encoder = ENCODERS.build(encoder, input_size=embedding_dim)
        self.head = HEADS.build(head, input_size=self.encoder.output_size, num_classes=len(self.labels),
                                num_directions=self.encoder.num_directions)
        self._confusion: Tensor | None = None

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (B, T), lengths (B,) -> class logits (B, C)."""
        if self.training:
            vocab = self.text_tokenizer.vocab
            tokens = word_dropout(tokens, self.word_dropout, vocab.unk_id, tokens != vocab.pad_id)
        states, _ = self.encoder(self.dropout(self.embedding(tokens)), lengths)  # (B, T, H)
        return self.head(states, lengths)

    def step(self, batch, stage: str) -> Tensor:
        logits = self(batch.tokens, batch.lengths)  # (B, C)
        loss = F.cross_entropy(logits.float(), batch.labels)
        self.log(f"{stage}/loss", loss, prog_bar=stage == "train", batch_size=len(batch),
                 sync_dist=stage != "train")
        if stage != "train":
            predicted = logits.argmax(-1)
            index = batch.labels * len(self.labels) + predicted  # row: true, column: predicted
            self._confusion += torch.bincount(index, minlength=len(self.labels) ** 2).view_as(self._confusion)
        return loss

    @torch.no_grad()
    def classify(self, texts: list[str], batch_size: int = 64) -> list[tuple[str, float] | None]:
        """The most probable label of each text and its probability; None for an empty text."""
        was_training = self.training
        self.eval()
        try:
            encoded = [self.text_tokenizer.encode(text) if text.strip() else [] for text in texts]
            results: list[tuple[str, float] | None] = [None] * len(texts)
            for rows in length_sorted_chunks(encoded, batch_size):
                tokens, lengths = pad_sequences([encoded[i] for i in rows], self.text_tokenizer.vocab.pad_id,
                                                self.device)
                probabilities, labels = self(tokens, lengths).float().softmax(-1).max(-1)  # (B,) each
                for i, label, probability in zip(rows, labels.tolist(), probabilities.tolist(), strict=True):
                    results[i] = (self.labels[label], probability)
            return results
        finally:
            self.train(was_training)

    def batch_size_and_tokens(self, batch) -> tuple[int, int]:
        return len(batch), int(batch.lengths.sum())

    def on_validation_epoch_start(self) -> None:
        self._confusion = torch.zeros(len(self.labels), len(self.labels), dtype=torch.long, device=self.device)

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        self.log_scores("val")

    def on_test_epoch_end(self) -> None:
        confusion = self.log_scores("test")
        if self.trainer.is_global_zero:
            figure = confusion_figure(confusion, self.labels)
            figure.savefig(Path(self.trainer.default_root_dir) / "confusion_matrix.png", dpi=100)
            for logger in self.trainer.loggers:
                if hasattr(getattr(logger, "experiment", None), "add_figure"):  # TensorBoard
                    logger.experiment.add_figure("test/confusion_matrix", figure, self.global_step, close=False)

    def log_scores(self, stage: str) -> Tensor:
        confusion = self._confusion
        if self.trainer.world_size > 1:
            confusion = self.all_gather(confusion).sum(0)
        scores = classification_scores(confusion.cpu(), self.labels)
        headline = ("acc", "macro_f1")
        self.log_dict({f"{stage}/{k}": scores[k] for k in headline}, prog_bar=True, sync_dist=False)
        self.log_dict({f"{stage}/{k}": v for k, v in scores.items() if k not in headline}, sync_dist=False)
        return confusion.cpu()
