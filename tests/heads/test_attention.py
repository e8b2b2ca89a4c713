"""Attention: a distribution over the real source tokens, zero on padding, and the context is
the weighted sum of the encoder states."""

import pytest
import torch

from seqtasks.configuration.registry import ATTENTION
from seqtasks.errors import ConfigError

TYPES = ["dot", "general", "concat", "additive"]


def build(name: str, size: int = 6):
    torch.manual_seed(0)
    return ATTENTION.build({"name": name}, query_size=size, memory_size=size)


@pytest.mark.parametrize("name", TYPES)
def test_weights_are_a_distribution_over_unmasked_positions(name):
    attention = build(name)
    memory = torch.randn(3, 5, 6)  # (B, S, H)
    query = torch.randn(3, 4, 6)  # (B, Tq, H)
    lengths = torch.tensor([5, 3, 1])
    mask = torch.arange(5)[None] < lengths[:, None]
    context, weights = attention(query, memory, attention.prepare(memory), mask)
    assert weights.shape == (3, 4, 5) and context.shape == (3, 4, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    assert (weights[~mask[:, None, :].expand_as(weights)] == 0).all()
    assert (weights[mask[:, None, :].expand_as(weights)] > 0).all()
    torch.testing.assert_close(context, torch.einsum("bts,bsh->bth", weights, memory))


@pytest.mark.parametrize("name", TYPES)
def test_padding_does_not_change_the_context(name):
    attention = build(name)
    memory = torch.randn(1, 3, 6)
    query = torch.randn(1, 2, 6)
    alone, _ = attention(query, memory, attention.prepare(memory), torch.ones(1, 3, dtype=torch.bool))
    padded = torch.cat([memory, torch.randn(1, 4, 6) * 100], dim=1)  # garbage in the padding
    mask = torch.tensor([[True] * 3 + [False] * 4])
    with_padding, _ = attention(query, padded, attention.prepare(padded), mask)
    torch.testing.assert_close(alone, with_padding)


def test_scores_follow_their_definitions():
    torch.manual_seed(1)
    q, h = torch.randn(2, 1, 4), torch.randn(2, 3, 4)
    dot = build("dot", 4)
    torch.testing.assert_close(dot.score(q, dot.prepare(h)), (q * h).sum(-1)[:, None, :])
    general = build("general", 4)
    w = general.project.weight  # (Hq, Hm)
    torch.testing.assert_close(general.score(q, general.prepare(h)), torch.einsum("bqi,ij,bsj->bqs", q, w, h))
    additive = build("additive", 4)
    hidden = torch.tanh(q @ additive.query_layer.weight.T + h @ additive.key_layer.weight.T)  # (B, S, A)
    expected = (hidden @ additive.energy.weight.T)[..., 0][:, None]  # (B, 1, S)
    torch.testing.assert_close(additive.score(q, additive.prepare(h)), expected)


def test_dot_attention_needs_equal_sizes():
    with pytest.raises(ConfigError, match="dot attention needs the decoder state size"):
        ATTENTION.build({"name": "dot"}, query_size=4, memory_size=8)


def test_unknown_attention_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown attention 'generl'; choose from: additive, concat, dot, general"):
        ATTENTION.build({"name": "generl"}, query_size=4, memory_size=4)
