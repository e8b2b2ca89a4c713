"""Decoding strategies agree where they must, on a fixed random Markov 'model'."""

import pytest
import torch

from seqtasks.decoding import Greedy, Sampling
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
    return strategy.decode(markov_step(), 0, first, 12, eos_id=eos_id, generator=torch.Generator().manual_seed(seed))


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


def test_invalid_options():
    with pytest.raises(ConfigError, match="temperature"):
        Sampling(temperature=-1)
    with pytest.raises(ConfigError, match="top_k"):
        Sampling(top_k=0)
    with pytest.raises(ConfigError, match="top_p"):
        Sampling(top_p=1.5)
