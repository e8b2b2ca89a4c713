"""The hidden-word run: every token scored by the larger of the step on the previous token and the
step on <unk> plus the bonus, renormalised, the state of the first kept; <bos> never hidden, and the
hidden-word run never votes for the word it hid."""

import math

import torch

from seqtasks.decoding import BeamSearch, Greedy
from seqtasks.decoding.hidden_word import HiddenWordStep

VOCAB, UNK, BOS = 6, 1, 2
TABLE = torch.randn(VOCAB, VOCAB, generator=torch.Generator().manual_seed(0))  # row: previous token
TABLE = TABLE.index_fill(1, torch.tensor([BOS]), -math.inf).log_softmax(-1)  # <bos> is never emitted


def step(prev, state):  # state: steps taken per row (B,), batch-first as strategies need
    return TABLE[prev], state + 1


def test_each_token_takes_the_larger_score_of_the_two_runs_and_the_search_keeps_the_first_runs_state():
    prev = torch.tensor([0, 3, 5, 3])
    log_probs, state = HiddenWordStep(step, UNK, BOS, bonus=0.5)(prev, torch.zeros(4))
    for row, token in enumerate(prev.tolist()):
        scores = [
            max(TABLE[token, v].item(), TABLE[UNK, v].item() + 0.5 if v != token else -math.inf) for v in range(VOCAB)
        ]
        expected = torch.tensor(scores).log_softmax(-1)
        torch.testing.assert_close(log_probs[row], expected)
    assert torch.equal(state, torch.ones(4))  # one step on, not two


def test_the_first_step_after_bos_is_the_decoders_own():
    log_probs, _ = HiddenWordStep(step, UNK, BOS, bonus=5.0)(torch.tensor([BOS]), torch.zeros(1))
    torch.testing.assert_close(log_probs[0], TABLE[BOS])


def test_a_large_bonus_lets_the_hidden_word_run_choose_and_a_very_negative_one_never():
    first = torch.tensor([0, 4])
    own = Greedy().decode(step, torch.zeros(2), first, 5)
    assert torch.equal(Greedy().decode(HiddenWordStep(step, UNK, BOS, bonus=-1e4), torch.zeros(2), first, 5), own)
    # With a huge bonus the hidden-word run chooses: its best token, or its second where that was the previous token.
    ranked = TABLE[UNK].argsort(descending=True)
    chosen = Greedy().decode(HiddenWordStep(step, UNK, BOS, bonus=1e4), torch.zeros(2), first, 5)
    previous = torch.cat([first[:, None], chosen[:, :-1]], dim=1)
    assert torch.equal(chosen, torch.where(previous == ranked[0], ranked[1], ranked[0]))


def test_beam_1_is_greedy_through_the_hidden_word_run():
    hidden = HiddenWordStep(step, UNK, BOS, bonus=0.5)
    first = torch.tensor([0, 3, 5])
    assert torch.equal(
        BeamSearch(beam_size=1).decode(hidden, torch.zeros(3), first, 6),
        Greedy().decode(hidden, torch.zeros(3), first, 6),
    )
