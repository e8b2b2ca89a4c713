"""Classifier-free guidance steers every strategy by prior + weight * (conditional - prior), on two
fixed random Markov 'models' (the conditional and the prior); never-emitted tokens and the
plausibility constraint on fixed log-probabilities."""

import math

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


# Log-probabilities of 4 tokens on the input and on none; token 3 is never emitted.
CONDITIONAL = torch.tensor([[0.60, 0.30, 0.10, 0.0]]).log()
PRIOR = torch.tensor([[0.20, 0.70, 0.10, 0.0]]).log()


def fixed(prev_tokens, state):
    return (CONDITIONAL if state == "input" else PRIOR), state


def guided(weight: float, plausibility: float = 0.0) -> torch.Tensor:
    log_probs, state = GuidedStep(fixed, weight, plausibility)(
        torch.zeros(1, dtype=torch.long), {"input": "input", "none": "none"}
    )
    assert state == {"input": "input", "none": "none"}
    return log_probs


def test_guidance_extrapolates_and_never_emits_what_the_conditional_never_emits():
    expected = torch.tensor([[2 * math.log(0.6) - math.log(0.2), 2 * math.log(0.3) - math.log(0.7), math.log(0.1)]])
    torch.testing.assert_close(guided(2.0)[:, :3], expected.log_softmax(-1))
    assert guided(2.0)[0, 3] == float("-inf") and not guided(0.0).isnan().any()
    torch.testing.assert_close(guided(1.0), CONDITIONAL)  # weight 1: the input alone


def test_plausibility_keeps_the_tokens_near_the_conditionals_best():
    # a = 0.4: the floor is 0.4 * 0.6 = 0.24, so token 2 (0.10) goes, token 1 (0.30) stays.
    constrained = guided(2.0, plausibility=0.4)
    assert constrained[0, 2] == float("-inf") and constrained[0, 3] == float("-inf")
    torch.testing.assert_close(constrained[:, :2], guided(2.0)[:, :2].log_softmax(-1))
    assert torch.isfinite(guided(2.0, plausibility=0.1)[:, :3]).all()
