"""Classifier-free guidance steers every strategy by prior + weight * (conditional - prior), on two
fixed random Markov 'models' (the conditional and the prior)."""

import torch

from seqtasks.decoding import BeamSearch, Greedy
from seqtasks.decoding.guidance import GuidedStep

VOCAB = 9
FIRST = torch.tensor([0, 4, 8])


def markov(seed: int):
    table = torch.randn(VOCAB, VOCAB, generator=torch.Generator().manual_seed(seed)).log_softmax(-1)

    def step(prev, state):  # state: steps taken per row (B,), batch-first as strategies need
        return table[prev], state + 1

    return table, step


def guided_decode(strategy, weight):
    tables = torch.stack([markov(1)[0], markov(2)[0]])  # (2, V, V): the model on its input, on none

    def step(prev, state):  # state: which table each row reads (B,), batch-first as strategies need
        return tables[state, prev], state

    state = {"input": torch.zeros_like(FIRST), "none": torch.ones_like(FIRST)}
    return strategy.decode(GuidedStep(step, weight), state, FIRST, 10)


def greedy_chain(log_probs_of):
    prev, chain = FIRST, []
    for _ in range(10):
        prev = log_probs_of(prev).argmax(-1)
        chain.append(prev)
    return torch.stack(chain, dim=1)


def test_weight_1_is_the_conditional_model_and_0_the_prior():
    conditional, _ = markov(1)
    prior, _ = markov(2)
    assert torch.equal(guided_decode(Greedy(), 1.0), greedy_chain(lambda prev: conditional[prev]))
    assert torch.equal(guided_decode(Greedy(), 0.0), greedy_chain(lambda prev: prior[prev]))


def test_a_larger_weight_steps_by_the_extrapolated_scores_and_can_choose_neither_models_word():
    conditional, prior = markov(1)[0], markov(2)[0]
    every = torch.arange(VOCAB)
    log_probs, _ = GuidedStep(lambda prev, state: (conditional[prev] if state == 0 else prior[prev], state), 3.0)(
        every, {"input": 0, "none": 1}
    )  # (V, V): after each token
    expected = (prior + 3.0 * (conditional - prior)).log_softmax(-1)
    torch.testing.assert_close(log_probs, expected)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(VOCAB))
    chosen = log_probs.argmax(-1)
    assert ((chosen != conditional.argmax(-1)) & (chosen != prior.argmax(-1))).any()
    assert torch.equal(guided_decode(Greedy(), 3.0), greedy_chain(lambda prev: expected[prev]))


def test_beam_search_reorders_both_branches_alike():
    # beam 1 keeps one hypothesis, so it must equal greedy; wider beams reorder the dict state
    assert torch.equal(guided_decode(BeamSearch(beam_size=1), 3.0), guided_decode(Greedy(), 3.0))
    assert guided_decode(BeamSearch(beam_size=4), 3.0).shape == (len(FIRST), 10)
