"""Metrics over a whole evaluation pass, computed from every example's record once the ranks'
records are gathered (`seqtasks.tensors.gather_by_key`): losses, corpus BLEU/chrF (sacreBLEU),
captions' attribute accuracy, classification and tagging scores, and the sample metrics of
generation (novelty, distinct, agreement)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from sacrebleu.metrics import BLEU, CHRF
from torch import Tensor


def loss_scores(nll: float, count: int) -> dict[str, float]:
    """Summed negative log-likelihood (nats) over `count` predictions -> mean `loss` and `ppl`."""
    loss = nll / max(count, 1)
    return {"loss": loss, "ppl": perplexity(loss)}


def perplexity(loss: float) -> float:
    """exp(loss); inf beyond the largest float (loss > 709.78), never a capped value that disagrees with the loss."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def corpus_scores(
    hypotheses: Sequence[str], references: Sequence[str | Sequence[str]]
) -> tuple[dict[str, float], dict[str, str]]:
    """sacreBLEU on detokenised text against raw references (cased, 13a tokenisation):
    {bleu, chrf}, {bleu, chrf signatures}. Each hypothesis has one reference, or a list of any
    number of them (captioning: every caption of an image)."""
    per_hypothesis = [[r] if isinstance(r, str) else list(r) for r in references]
    most = max(map(len, per_hypothesis), default=1)
    # sacreBLEU takes reference streams (the k-th reference of every hypothesis); None where a
    # hypothesis has fewer than `most`.
    streams = [[refs[k] if k < len(refs) else None for refs in per_hypothesis] for k in range(most)]
    bleu, chrf = BLEU(), CHRF()
    scores = {
        "bleu": bleu.corpus_score(list(hypotheses), streams).score,
        "chrf": chrf.corpus_score(list(hypotheses), streams).score,
    }
    return scores, {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}


Objects = tuple[tuple[str, ...], ...]  # what a caption says is in the image: sorted attribute tuples


def attribute_scores(
    hypotheses: Sequence[str],
    truths: Sequence[Objects],
    parse: Callable[[str], Objects],
    held_out: Sequence[bool],
) -> dict[str, float]:
    """Share of hypotheses that name exactly the true objects with their attributes (`attr_acc`:
    the parsed hypothesis equals the truth as a multiset), on the examples marked held_out
    (`attr_acc_heldout`: images with an attribute combination training never showed; 0 without
    any) and their share (`heldout_share`)."""
    correct = [parse(h) == t for h, t in zip(hypotheses, truths, strict=True)]
    held = [c for c, h in zip(correct, held_out, strict=True) if h]
    return {
        "attr_acc": sum(correct) / max(len(correct), 1),
        "attr_acc_heldout": sum(held) / max(len(held), 1),
        "heldout_share": len(held) / max(len(correct), 1),
    }


def confusion_matrix(gold: Tensor, predicted: Tensor, num_classes: int) -> Tensor:
    """gold, predicted (N,) long -> counts (C, C), rows: true class, columns: predicted."""
    index = gold * num_classes + predicted
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)


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
        scores.update(
            {
                f"precision/{label}": float(precision[i]),
                f"recall/{label}": float(recall[i]),
                f"f1/{label}": float(f1[i]),
            }
        )
    return scores


def tagging_scores(gold: Tensor, predicted: Tensor, unseen: Tensor, tags: list[str]) -> dict[str, float]:
    """gold, predicted (N,) long, unseen (N,) bool over N words -> accuracy overall (`acc`), on unseen
    words (`acc_unseen`, 0 when there are none), the share of unseen words (`unseen_rate`), and per gold
    tag (`acc/<TAG>`: the share of that tag's words tagged right; tags absent from the gold left out)."""
    correct = gold == predicted  # (N,)
    total = max(len(gold), 1)
    scores = {
        "acc": float(correct.sum()) / total,
        "acc_unseen": float(correct[unseen].sum()) / max(int(unseen.sum()), 1),
        "unseen_rate": float(unseen.sum()) / total,
    }
    counts = torch.bincount(gold, minlength=len(tags))  # (K,)
    hits = torch.bincount(gold[correct], minlength=len(tags))  # (K,)
    for k, tag in enumerate(tags):
        if counts[k] > 0:
            scores[f"acc/{tag}"] = float(hits[k]) / float(counts[k])
    return scores


Classify = Callable[[list[str]], list[str]]  # texts -> one predicted label each


def sample_scores(
    samples: dict[str, list[str]], training_texts: set[str], classify: Classify | None = None
) -> tuple[dict[str, float], list[tuple[str, str, bool, str]]]:
    """Samples by requested category -> ({novelty, distinct[, agreement]} over all samples, plus
    `novelty/<category>` and `agreement/<category>`), rows (category, sample, novel, predicted label or '').

    - novelty: share of samples that are non-empty and not a training text (exact string match);
    - distinct: distinct samples per category / samples (1: no sample repeats within its category);
    - agreement: share of samples that `classify` assigns to the requested category (left out
      without a classifier)."""
    flat = [(category, text) for category, texts in samples.items() for text in texts]
    if not flat:
        return {}, []
    novel = [bool(text) and text not in training_texts for _, text in flat]
    predicted = classify([text for _, text in flat]) if classify is not None else None
    scores = {
        "novelty": sum(novel) / len(flat),
        "distinct": sum(len(set(texts)) for texts in samples.values()) / len(flat),
    }
    if predicted is not None:
        scores["agreement"] = sum(p == c for p, (c, _) in zip(predicted, flat, strict=True)) / len(flat)
    start = 0
    for category, texts in samples.items():
        rows = slice(start, start + len(texts))
        start += len(texts)
        scores[f"novelty/{category}"] = sum(novel[rows]) / max(len(texts), 1)
        if predicted is not None:
            scores[f"agreement/{category}"] = sum(p == category for p in predicted[rows]) / max(len(texts), 1)
    labels = predicted or [""] * len(flat)
    return scores, [(c, text, n, p) for (c, text), n, p in zip(flat, novel, labels, strict=True)]
