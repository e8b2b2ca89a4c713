"""LinearChainCRF against brute-force enumeration of every tag sequence on tiny examples."""

import itertools
import math

import pytest
import torch

from seqtasks.heads.crf import LinearChainCRF

K = 3


def make_crf(seed: int = 0) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(K)
    with torch.no_grad():  # larger than the init, so that transitions matter to every result
        for param in crf.parameters():
            param.normal_()
    return crf


def brute_force_scores(crf: LinearChainCRF, emissions: torch.Tensor) -> dict[tuple[int, ...], float]:
    """Every tag sequence of one sequence's emissions (n, K) -> its score, straight from the definition."""
    A, start, end = crf.transitions.tolist(), crf.start.tolist(), crf.end.tolist()
    e = emissions.tolist()
    scores = {}
    for path in itertools.product(range(K), repeat=len(e)):
        score = start[path[0]] + end[path[-1]] + sum(e[t][y] for t, y in enumerate(path))
        score += sum(A[a][b] for a, b in itertools.pairwise(path))
        scores[path] = score
    return scores


def padded_batch(lengths, seed: int = 1, pad_value: float = 1e4):
    """Random emissions (B, T, K) with garbage in the padding, and the prefix mask (B, T)."""
    torch.manual_seed(seed)
    T = max(lengths)
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)  # (B, T)
    emissions = torch.randn(len(lengths), T, K).masked_fill(~mask.unsqueeze(2), pad_value)  # (B, T, K)
    return emissions, mask


LENGTHS = [(4, 2), (3, 3), (1, 4), (2, 1, 4)]


@pytest.mark.parametrize("lengths", LENGTHS)
def test_log_likelihood_matches_enumeration_and_sums_to_one(lengths):
    crf = make_crf()
    emissions, mask = padded_batch(lengths)
    for b, n in enumerate(lengths):
        scores = brute_force_scores(crf, emissions[b, :n])
        paths = list(scores)
        log_z = math.log(sum(math.exp(s) for s in scores.values()))
        # Every path of sequence b at once, each in the padded batch layout with -100 on padded tags.
        tags = torch.full((len(paths), emissions.shape[1]), -100, dtype=torch.long)  # (K^n, T)
        tags[:, :n] = torch.tensor(paths)
        batch = emissions[b].expand(len(paths), -1, -1)  # (K^n, T, K)
        ll = crf.log_likelihood(batch, tags, mask[b].expand(len(paths), -1))  # (K^n,)
        expected = torch.tensor([scores[p] - log_z for p in paths])
        torch.testing.assert_close(ll, expected, atol=1e-5, rtol=0)
        assert ll.exp().sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("lengths", LENGTHS)
def test_viterbi_is_the_brute_force_argmax(lengths):
    crf = make_crf()
    emissions, mask = padded_batch(lengths)
    decoded = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        scores = brute_force_scores(crf, emissions[b, :n])
        assert decoded[b] == list(max(scores, key=scores.get))
        assert len(decoded[b]) == n


def test_padding_never_changes_a_result():
    crf = make_crf()
    alone = torch.randn(1, 2, K)
    tags_alone = torch.tensor([[2, 1]])
    for pad_value in (0.0, 1e4, -1e4, float("inf"), float("nan")):
        padded = torch.cat([alone, torch.full((1, 2, K), pad_value)], dim=1)  # (1, 4, K)
        batch = torch.cat([padded, torch.randn(1, 4, K)])  # (2, 4, K)
        tags = torch.tensor([[2, 1, -100, -100], [0, 1, 2, 0]])
        mask = torch.tensor([[True, True, False, False], [True] * 4])
        ll_batch = crf.log_likelihood(batch, tags, mask)
        torch.testing.assert_close(ll_batch[:1], crf.log_likelihood(alone, tags_alone), atol=1e-6, rtol=0)
        assert crf.decode(batch, mask)[0] == crf.decode(alone)[0]


def test_no_mask_means_every_step_is_valid():
    crf = make_crf()
    emissions, _ = padded_batch((3, 3))
    tags = torch.tensor([[0, 1, 2], [2, 2, 0]])
    full = torch.ones(2, 3, dtype=torch.bool)
    torch.testing.assert_close(crf.log_likelihood(emissions, tags), crf.log_likelihood(emissions, tags, full))
    assert crf.decode(emissions) == crf.decode(emissions, full)


@pytest.mark.parametrize("pad_value", [0.0, float("inf"), float("nan")])
def test_gradients_reach_every_parameter_and_no_padded_emission(pad_value):
    crf = make_crf()
    emissions, mask = padded_batch((4, 2), pad_value=pad_value)
    emissions.requires_grad_(True)
    tags = torch.tensor([[0, 1, 2, 1], [2, 0, -100, -100]])
    loss = crf.nll(emissions, tags, mask)
    assert loss.dim() == 0 and loss.item() > 0
    loss.backward()
    for name, param in crf.named_parameters():
        assert param.grad is not None and param.grad.isfinite().all() and param.grad.abs().sum() > 0, name
    assert emissions.grad[~mask].abs().max() == 0
    assert (emissions.grad[mask].abs().sum(dim=1) > 0).all()


def test_rejects_masks_that_are_not_prefix_masks():
    crf = make_crf()
    emissions = torch.randn(1, 3, K)
    tags = torch.zeros(1, 3, dtype=torch.long)
    for bad in ([[False, True, True]], [[True, False, True]]):
        with pytest.raises(ValueError, match="prefix mask"):
            crf.log_likelihood(emissions, tags, torch.tensor(bad))
    with pytest.raises(ValueError, match="emissions"):
        crf.decode(torch.randn(1, 3, K + 1))


def test_learns_transitions_that_emissions_cannot_tell():
    # Tags cycle 0 -> 1 -> 2 -> 0; only step 0's emission says where a sequence starts, every later step
    # is uninformative (all zeros), so 100% accuracy needs the learned transitions.
    torch.manual_seed(0)
    crf = LinearChainCRF(K)
    lengths = torch.tensor([6, 5, 4, 3, 6, 2])
    starts = torch.tensor([0, 1, 2, 0, 2, 1])
    T = int(lengths.max())
    mask = torch.arange(T) < lengths.unsqueeze(1)  # (B, T)
    tags = (starts.unsqueeze(1) + torch.arange(T)) % K  # (B, T)
    emissions = torch.zeros(len(lengths), T, K)  # (B, T, K)
    emissions[torch.arange(len(lengths)), 0, starts] = 3.0
    optimizer = torch.optim.Adam(crf.parameters(), lr=0.1)
    for _ in range(200):
        optimizer.zero_grad()
        crf.nll(emissions, tags, mask).backward()
        optimizer.step()
    decoded = crf.decode(emissions, mask)
    assert decoded == [row[:n] for row, n in zip(tags.tolist(), lengths.tolist(), strict=True)]
