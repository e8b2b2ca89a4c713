"""Decoding strategies agree where they must, on a fixed random Markov 'model'."""

import pytest
import torch

from seqtasks.configuration.registry import DECODING
from seqtasks.decoding import BeamSearch, Greedy, Sampling, TokenByToken
from seqtasks.decoding.sampling import filter_top_k, filter_top_p
from seqtasks.errors import ConfigError

VOCAB = 11


def markov_step():
    torch.manual_seed(0)
    table = torch.randn(VOCAB, VOCAB).log_softmax(-1)  # log p(next | prev)

    def step(prev, state):
        return table[prev], state + 1

    return step


def decode(strategy, seed=0, eos_id=None):
    first = torch.tensor([0, 3, 7])
    state = torch.zeros(3)  # batch-first, as the contract asks: finished rows leave the batch
    generator = torch.Generator().manual_seed(seed)
    return strategy.decode(markov_step(), state, first, 12, eos_id=eos_id, generator=generator)


def test_greedy_follows_the_argmax_chain():
    out = decode(Greedy())
    step = markov_step()
    prev = torch.tensor([0, 3, 7])
    for t in range(12):
        prev = step(prev, 0)[0].argmax(-1)
        assert torch.equal(out[:, t], prev)


def test_top_k_1_equals_greedy():
    assert torch.equal(decode(Sampling(temperature=1.0, top_k=1)), decode(Greedy()))


def test_temperature_to_zero_equals_greedy():
    assert torch.equal(decode(Sampling(temperature=1e-4)), decode(Greedy()))
    assert torch.equal(decode(Sampling(temperature=0.0)), decode(Greedy()))


def test_tiny_top_p_equals_greedy():
    assert torch.equal(decode(Sampling(top_p=1e-6)), decode(Greedy()))


def test_sampling_is_random_but_seeded():
    a, b, c = decode(Sampling(), seed=1), decode(Sampling(), seed=1), decode(Sampling(), seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sampling_matches_the_distribution():
    probs = torch.tensor([[0.1, 0.6, 0.3]])
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([Sampling().choose(probs.log(), generator) for _ in range(4000)])
    frequencies = torch.bincount(draws.flatten(), minlength=3).float() / 4000
    torch.testing.assert_close(frequencies, probs[0], atol=0.03, rtol=0)


def test_filters():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    assert torch.isinf(filter_top_k(logits, 2)).tolist() == [[True, False, False, True]]
    probs = logits.softmax(-1)  # ≈ [0.09, 0.64, 0.24, 0.03]
    assert probs[0, 1] < 0.7 < probs[0, 1] + probs[0, 2]
    assert torch.isinf(filter_top_p(logits, 0.7)).tolist() == [[True, False, False, True]]
    assert not torch.isinf(filter_top_p(logits, 1.0)).any()


def test_eos_stops_rows_and_pads_with_eos():
    out = decode(Greedy(), eos_id=int(decode(Greedy())[0, 1]))
    first_eos = (out[0] == out[0, 1]).nonzero()[0, 0]
    assert torch.all(out[0, first_eos:] == out[0, 1])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": -1}, r"decoding.temperature=-1: expected a number >= 0"),
        ({"top_k": 0}, r"decoding.top_k=0: expected an integer >= 1 or null"),
        ({"top_p": 1.5}, r"decoding.top_p=1.5: expected a number in \(0, 1\] or null"),
        ({"top_p": 0.0}, r"decoding.top_p=0.0: expected a number in \(0, 1\] or null"),
        ({"tempreature": 1.0}, r"has no option 'decoding.tempreature'.*did you mean 'temperature'"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(ConfigError, match=message):
        DECODING.build({"name": "sampling", **options}, "decoding")


def replayed_score(tokens: torch.Tensor, first: int) -> float:
    """Sum of the Markov model's log-probabilities of `tokens` after `first`."""
    step, prev, total = markov_step(), torch.tensor([first]), 0.0
    for token in tokens.tolist():
        total += float(step(prev, 0)[0][0, token])
        prev = torch.tensor([token])
    return total


@pytest.mark.parametrize(
    "strategy",
    [Greedy(n_best=3), Sampling(n_best=5), BeamSearch(beam_size=4, n_best=4, length_penalty=0.0)],
    ids=["greedy", "sampling", "beam"],
)
def test_every_strategy_returns_n_best_lists_best_first_scored_by_their_log_probs(strategy):
    first = torch.tensor([0, 3, 7])
    state = torch.zeros(3)  # the Markov model ignores it, but strategies may repeat and reorder it
    tokens, scores = strategy.search(markov_step(), state, first, 6, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (3, strategy.n_best, 6) and scores.shape == (3, strategy.n_best)
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first
    for row in range(3):
        for k in range(strategy.n_best):
            assert abs(float(scores[row, k]) - replayed_score(tokens[row, k], int(first[row]))) < 1e-4
    if not isinstance(strategy, Sampling):  # deterministic: the best of the n-best list is decode()'s result
        assert torch.equal(tokens[:, 0], strategy.decode(markov_step(), state, first, 6))


def test_n_samples_are_independent_draws_with_the_same_distribution():
    first = torch.tensor([0])
    tokens, _ = Sampling().search(
        markov_step(), torch.zeros(1), first, 1, generator=torch.Generator().manual_seed(0), n=4000
    )
    probs = markov_step()(first, 0)[0].exp()[0]
    frequencies = torch.bincount(tokens[0, :, 0], minlength=VOCAB).float() / 4000
    torch.testing.assert_close(frequencies, probs, atol=0.03, rtol=0)
    greedy, _ = Greedy().search(markov_step(), torch.zeros(1), first, 5, n=3)
    assert all(torch.equal(greedy[0, 0], greedy[0, k]) for k in range(3))


def test_only_strategies_that_draw_say_so_and_a_new_one_is_taken_to_draw():
    """seqtasks.serve batches the requests of different clients only for strategies that do not draw."""

    class Unknown(TokenByToken):
        def choose(self, log_probs, generator=None):
            return log_probs.argmax(dim=-1)

    assert not Greedy().draws_at_random and not BeamSearch().draws_at_random
    assert not Sampling(temperature=0.0).draws_at_random
    assert Sampling(temperature=0.7).draws_at_random
    assert Unknown().draws_at_random
