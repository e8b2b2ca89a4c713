"""Tagging heads (softmax_tagger, crf_tagger): one interface, shapes, and padding that never changes
a loss, a gradient or a prediction. The CRF itself is checked against brute force in test_crf.py."""

from __future__ import annotations

import pytest
import torch
from conftest import smoothed_nll
from torch.nn import functional as F

from seqtasks.configuration.registry import HEADS
from seqtasks.heads.tagger import PADDING, CRFTagger, SoftmaxTagger

H, K = 6, 4
HEAD_NAMES = ("softmax_tagger", "crf_tagger")


def build(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return HEADS.build({"name": name, "dropout": 0.5}, input_size=H, num_tags=K).eval()


def padded(lengths, seed: int = 1, pad_value: float = 1e3):
    """Random states (B, T, H) with garbage in the padding, random tags with -100 there, prefix mask (B, T)."""
    torch.manual_seed(seed)
    T = max(lengths)
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)  # (B, T)
    states = torch.randn(len(lengths), T, H).masked_fill(~mask.unsqueeze(2), pad_value)
    tags = torch.randint(0, K, (len(lengths), T)).masked_fill(~mask, -100)
    return states, tags, mask


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_shapes_and_padding_marked(name):
    head = build(name)
    states, tags, mask = padded([3, 1, 2])
    assert head(states).shape == (3, 3, K) and head(states).dtype == torch.float32
    loss = head.loss(states, tags, mask)
    assert loss.dim() == 0 and loss.item() > 0
    decoded = head.decode(states, mask)
    assert decoded.shape == (3, 3) and decoded.dtype == torch.long
    assert (decoded[~mask] == PADDING).all() and ((decoded[mask] >= 0) & (decoded[mask] < K)).all()


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_padding_never_changes_loss_gradients_or_predictions(name):
    head = build(name)
    alone, alone_tags, _ = padded([2], seed=3)
    other, other_tags, _ = padded([4], seed=4)
    results = []
    for pad_value in (0.0, 1e4, -7.0):
        states = torch.cat([torch.cat([alone, torch.full((1, 2, H), pad_value)], 1), other]).requires_grad_(True)
        tags = torch.cat([torch.cat([alone_tags, torch.tensor([[-100, 3]])], 1), other_tags])  # any padding tag
        mask = torch.tensor([[True, True, False, False], [True] * 4])
        loss = head.loss(states, tags, mask)
        loss.backward()
        assert states.grad[~mask].abs().max() == 0
        results.append((loss.detach(), head.decode(states, mask)))
        # The batch loss is the words' mean: per-sentence losses weighted by their lengths.
        parts = [
            head.loss(alone, alone_tags, torch.ones(1, 2, dtype=torch.bool)),
            head.loss(other, other_tags, torch.ones(1, 4, dtype=torch.bool)),
        ]
        torch.testing.assert_close(loss.detach(), (2 * parts[0] + 4 * parts[1]).detach() / 6)
    for loss, decoded in results[1:]:
        torch.testing.assert_close(loss, results[0][0])
        assert torch.equal(decoded, results[0][1])
    assert results[0][1][0, :2].tolist() == build(name).decode(alone, torch.ones(1, 2, dtype=torch.bool))[0].tolist()


def test_softmax_tagger_is_cross_entropy_and_argmax():
    head = build("softmax_tagger")
    states, tags, mask = padded([3, 2])
    logits = head(states)
    torch.testing.assert_close(head.loss(states, tags, mask), F.cross_entropy(logits[mask], tags[mask]))
    assert torch.equal(head.decode(states, mask)[mask], logits.argmax(-1)[mask])


def test_label_smoothing_mixes_the_training_nll_with_the_mean_over_tags_and_spares_emission_loss():
    torch.manual_seed(0)
    head = HEADS.build({"name": "softmax_tagger", "dropout": 0.0, "label_smoothing": 0.2}, input_size=H, num_tags=K)
    states, tags, mask = padded([3, 1, 2])
    log_probs = head(states)[mask].log_softmax(-1)  # (N, K) over the real words
    smoothed, plain = (smoothed_nll(log_probs, tags[mask], smoothing).item() for smoothing in (0.2, 0.0))
    assert head.loss(states, tags, mask).item() == pytest.approx(smoothed, rel=1e-5)
    assert head.emission_loss(head(states), tags, mask).item() == pytest.approx(plain, rel=1e-5)


def test_crf_tagger_is_the_crf_over_linear_emissions():
    head = build("crf_tagger")
    states, tags, mask = padded([3, 2])
    emissions = head(states)
    expected = -head.crf.log_likelihood(emissions, tags, mask).sum() / mask.sum()
    torch.testing.assert_close(head.loss(states, tags, mask), expected)
    decoded = head.decode(states, mask)
    assert [row[:n].tolist() for row, n in zip(decoded, mask.sum(1), strict=True)] == head.crf.decode(emissions, mask)


def test_dropout_acts_in_training_only():
    head = build("softmax_tagger")
    states = torch.randn(2, 3, H)
    assert torch.equal(head(states), head(states))
    head.train()
    assert not torch.equal(head(states), head(states))


def test_heads_are_registered_with_one_interface():
    assert isinstance(build("softmax_tagger"), SoftmaxTagger) and isinstance(build("crf_tagger"), CRFTagger)
    with pytest.raises(ValueError, match="at least one tag"):
        HEADS.build({"name": "softmax_tagger"}, input_size=H, num_tags=0)
