"""Beam search's ranking of chunks first against ranking every (beam, token) sum."""

import pytest
import torch

from seqtasks.decoding.candidates import CHUNK, best_extensions, first_argmax


def every_sum_ranked(scores, log_probs, k):
    """The reference: all K x V sums materialised, then ranked."""
    return (scores[..., None] + log_probs).flatten(1).topk(k, dim=-1)


@pytest.mark.parametrize("vocab", [3, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17, 2000])
@pytest.mark.parametrize("beams", [1, 2, 5])
def test_the_k_best_sums_and_their_places_equal_ranking_every_sum(vocab, beams):
    generator = torch.Generator().manual_seed(vocab * 10 + beams)
    scores = -5 * torch.rand(7, beams, generator=generator)  # (L, K)
    log_probs = torch.randn(7, beams, vocab, generator=generator).log_softmax(-1)  # (L, K, V)
    k = min(beams, vocab * beams)
    best, where = best_extensions(scores, log_probs, k)
    expected_best, expected_where = every_sum_ranked(scores, log_probs, k)
    torch.testing.assert_close(best, expected_best, rtol=0, atol=0)
    assert torch.equal(where, expected_where)


def test_the_best_sums_may_all_come_from_one_beam_and_one_chunk():
    scores = torch.tensor([[0.0, -1.0, -2.0]])
    log_probs = torch.full((1, 3, 4 * CHUNK), -20.0)
    log_probs[0, 1, CHUNK + 3 : CHUNK + 8] = torch.tensor([-0.1, -0.2, -0.3, -0.4, -0.5])  # beam 1, chunk 1
    best, where = best_extensions(scores, log_probs, 3)
    assert where.tolist() == [[4 * CHUNK + CHUNK + 3, 4 * CHUNK + CHUNK + 4, 4 * CHUNK + CHUNK + 5]]
    torch.testing.assert_close(best, torch.tensor([[-1.1, -1.2, -1.3]]))


def test_beams_at_minus_infinity_and_finished_beams_rank_as_with_every_sum():
    """The first step (only beam 0 may expand) and a finished beam (only eos, at log-prob 0)."""
    vocab, beams = 3 * CHUNK + 5, 4
    log_probs = torch.randn(2, beams, vocab, generator=torch.Generator().manual_seed(0)).log_softmax(-1)
    scores = torch.tensor([[0.0, float("-inf"), float("-inf"), float("-inf")], [-3.0, -0.5, -4.0, -6.0]])
    log_probs[1, 1] = float("-inf")
    log_probs[1, 1, 2] = 0.0  # sentence 1's beam 1 has finished: eos (id 2) alone follows it
    best, where = best_extensions(scores, log_probs, beams)
    expected_best, expected_where = every_sum_ranked(scores, log_probs, beams)
    torch.testing.assert_close(best, expected_best, rtol=0, atol=0)
    assert torch.equal(where, expected_where)
    assert where[1, 0].item() == vocab + 2  # the finished beam keeps the lead with its frozen score


@pytest.mark.parametrize("vocab", [1, 5, CHUNK, CHUNK + 1, 2 * CHUNK + 30, 8000])
def test_first_argmax_is_torch_argmax_ties_and_minus_infinity_included(vocab):
    generator = torch.Generator().manual_seed(vocab)
    values = torch.randn(6, vocab, generator=generator)
    values[1] = torch.randint(0, 3, (vocab,), generator=generator).float()  # many exact ties of the maximum
    values[2] = float("-inf")  # a row with nothing allowed
    values[3, -1] = 100.0  # the maximum in the last, possibly shorter, chunk
    values[4, 0] = values[4, -1] = 100.0  # a tie between the first and the last position
    assert torch.equal(first_argmax(values), values.argmax(dim=-1))
