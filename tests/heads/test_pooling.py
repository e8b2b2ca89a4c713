"""SequencePooling against hand computations on padded batches."""

import pytest
import torch

from seqtasks.errors import ConfigError
from seqtasks.heads.pooling import POOLING_METHODS, SequencePooling

LENGTHS = torch.tensor([5, 2, 1])
H = 4


def padded_states(pad_value: float, seed: int = 0) -> torch.Tensor:
    """Random states (B, T, H) for LENGTHS with `pad_value` in every padded position."""
    torch.manual_seed(seed)
    mask = torch.arange(5) < LENGTHS.unsqueeze(1)  # (B, T)
    return torch.randn(3, 5, H).masked_fill(~mask.unsqueeze(2), pad_value)


def by_hand(method: str, pooling: SequencePooling, states: torch.Tensor) -> torch.Tensor:
    """One sequence at a time, over its valid steps only."""
    rows = []
    for b, n in enumerate(LENGTHS.tolist()):
        valid = states[b, :n]  # (n, H)
        if method == "last":
            rows.append(valid[-1])
        elif method == "mean":
            rows.append(valid.sum(0) / n)
        elif method == "max":
            rows.append(valid.max(0).values)
        else:
            weights = torch.softmax(pooling.scorer(valid).squeeze(1), dim=0)  # (n,)
            rows.append((weights.unsqueeze(1) * valid).sum(0))
    return torch.stack(rows)


@pytest.mark.parametrize(("method", "attention_size"), [(m, 0) for m in POOLING_METHODS] + [("attention", 3)])
def test_matches_hand_computation(method, attention_size):
    torch.manual_seed(1)
    pooling = SequencePooling(H, method, attention_size=attention_size)
    states = padded_states(0.0)
    out = pooling(states, LENGTHS)
    assert out.shape == (3, H) == (3, pooling.output_size)
    torch.testing.assert_close(out, by_hand(method, pooling, states))


@pytest.mark.parametrize("pad_value", [1e6, -1e6, float("inf"), float("nan")])
@pytest.mark.parametrize("method", POOLING_METHODS)
def test_padding_never_changes_a_result(method, pad_value):
    torch.manual_seed(1)
    pooling = SequencePooling(H, method, attention_size=3)
    # Valid states all negative: with 0 (or anything) filled in as padding, max would pick the padding.
    clean = -padded_states(0.0).abs() - 1
    dirty = -padded_states(0.0).abs() - 1
    mask = torch.arange(5) < LENGTHS.unsqueeze(1)  # (B, T)
    dirty[~mask] = pad_value
    torch.testing.assert_close(pooling(dirty, LENGTHS), pooling(clean, LENGTHS), atol=0, rtol=0)
    assert pooling(dirty, LENGTHS).isfinite().all()


def test_last_of_a_bidirectional_encoder_takes_each_direction_where_it_ends():
    B, T, half = 3, 5, 2
    # Forward features hold 100*b + t, backward features -(100*b + t): each value says where it sits.
    where = (100 * torch.arange(B).view(B, 1, 1) + torch.arange(T).view(1, T, 1)).float()  # (B, T, 1)
    states = torch.cat([where.expand(B, T, half), -where.expand(B, T, half)], dim=2)  # (B, T, 2*half)
    out = SequencePooling(2 * half, "last", num_directions=2)(states, LENGTHS)
    forward = [100 * b + n - 1 for b, n in enumerate(LENGTHS.tolist())]  # step length-1
    backward = [-(100 * b) for b in range(B)]  # step 0
    expected = torch.tensor([[f] * half + [k] * half for f, k in zip(forward, backward, strict=True)]).float()
    torch.testing.assert_close(out, expected)
    # A unidirectional `last` reads every feature at length-1.
    torch.testing.assert_close(
        SequencePooling(2 * half, "last")(states, LENGTHS)[:, half:],
        -torch.tensor(forward).float().unsqueeze(1).expand(B, half),
    )


def test_attention_weights_sum_to_one_and_are_zero_on_padding():
    pooling = SequencePooling(H, "attention")
    assert pooling.attention_weights is None
    pooling(padded_states(1e6), LENGTHS)
    weights = pooling.attention_weights
    mask = torch.arange(5) < LENGTHS.unsqueeze(1)  # (B, T)
    assert weights.shape == (3, 5) and not weights.requires_grad
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    assert weights[2, 0] == 1.0  # a one-step sequence puts all its weight on that step


def test_attention_scorer_gets_gradients():
    pooling = SequencePooling(H, "attention", attention_size=3)
    pooling(padded_states(0.0), LENGTHS).sum().backward()
    for name, param in pooling.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_unknown_method_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown pooling method 'maxx'") as error:
        SequencePooling(H, "maxx")
    for method in POOLING_METHODS:
        assert method in str(error.value)
    with pytest.raises(ConfigError, match="num_directions"):
        SequencePooling(H, "last", num_directions=3)
    with pytest.raises(ConfigError, match="does not split"):
        SequencePooling(5, "last", num_directions=2)


def test_rejects_bad_lengths():
    pooling = SequencePooling(H, "mean")
    with pytest.raises(ValueError, match="length"):
        pooling(torch.randn(2, 3, H), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="length"):
        pooling(torch.randn(2, 3, H), torch.tensor([4, 3]))
