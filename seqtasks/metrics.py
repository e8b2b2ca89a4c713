"""Metrics over a whole evaluation pass: corpus BLEU/chrF (gathered across DDP ranks before
scoring) and classification scores from a confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from sacrebleu.metrics import BLEU, CHRF
from torch import Tensor


@dataclass
class TranslationScores:
    """Hypotheses and references of one evaluation pass by example index, plus the summed NLL.

    Keyed by index because under DDP the ranks' batch lists are padded to equal length, so a few
    sentences are decoded twice; each is scored once."""

    pairs: dict[int, tuple[str, str]] = field(default_factory=dict)  # index -> (hypothesis, reference)
    nll: float = 0.0
    tokens: int = 0

    def add(self, indices: list[int], hypotheses: list[str], references: list[str], nll: float = 0.0,
            tokens: int = 0) -> None:
        self.pairs.update(zip(indices, zip(hypotheses, references, strict=True), strict=True))
        self.nll += nll
        self.tokens += tokens

    def merge(self, other: TranslationScores) -> None:
        self.pairs.update(other.pairs)
        self.nll += other.nll
        self.tokens += other.tokens

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        """sacreBLEU on detokenised text against raw references (cased, 13a tokenisation):
        {bleu, chrf, loss (NLL per target token)}, {bleu, chrf signatures}."""
        hypotheses = [self.pairs[i][0] for i in sorted(self.pairs)]
        references = [self.pairs[i][1] for i in sorted(self.pairs)]
        bleu, chrf = BLEU(), CHRF()
        metrics = {
            "bleu": bleu.corpus_score(hypotheses, [references]).score,
            "chrf": chrf.corpus_score(hypotheses, [references]).score,
            "loss": self.nll / max(self.tokens, 1),
        }
        return metrics, {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}


def gather_from_ranks(scores: TranslationScores, trainer) -> TranslationScores:
    """All ranks' sentences in one object (every rank gets the same), so corpus metrics are exact."""
    if trainer is None or trainer.world_size == 1:
        return scores
    parts: list[TranslationScores | None] = [None] * trainer.world_size
    torch.distributed.all_gather_object(parts, scores)
    merged = TranslationScores()
    for part in parts:
        merged.merge(part)
    return merged


def classification_scores(confusion: Tensor, labels: list[str]) -> dict[str, float]:
    """From a confusion matrix (C, C) (rows: true class, columns: predicted): accuracy, macro-F1
    (the unweighted mean over classes, so small classes count as much as large ones) and per-class
    precision, recall and F1 as flat keys (`precision/<label>`, ...)."""
    confusion = confusion.double()
    true_positives = confusion.diag()
    precision = true_positives / confusion.sum(0).clamp(min=1)
    recall = true_positives / confusion.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    scores = {"acc": float(true_positives.sum() / confusion.sum().clamp(min=1)), "macro_f1": float(f1.mean())}
    for i, label in enumerate(labels):
        scores.update({f"precision/{label}": float(precision[i]), f"recall/{label}": float(recall[i]),
                       f"f1/{label}": float(f1[i])})
    return scores
