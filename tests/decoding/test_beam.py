"""Beam search, per-row length limits and the batch-first state contract, on small random models."""

import math

import pytest
import torch
from torch import nn

from seqtasks.configuration.registry import DECODING
from seqtasks.data.text_stream import TextStreamData
from seqtasks.decoding import BeamSearch, Greedy, Sampling
from seqtasks.errors import ConfigError
from seqtasks.runtime.build import build_task, container
from seqtasks.tensors import repeat_state, select_state

VOCAB, LAYERS, HIDDEN, CONTEXT = 12, 2, 16, 6


class TinyModel:
    """A 2-layer GRU + Linear conditioned on a per-row context, behind a step function whose state
    is batch-first and nested: {"h": (B, L, H), "context": [(B, C)]}."""

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        self.embed = nn.Embedding(VOCAB, 8)
        self.gru = nn.GRU(8, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.out = nn.Linear(HIDDEN + CONTEXT, VOCAB)
        self.state = {"h": torch.randn(5, LAYERS, HIDDEN), "context": [3 * torch.randn(5, CONTEXT)]}
        self.first = torch.tensor([0, 3, 7, 2, 9])

    @torch.no_grad()
    def step(self, prev, state):
        out, h = self.gru(self.embed(prev)[:, None], state["h"].transpose(0, 1).contiguous())
        logits = 2 * self.out(torch.cat([out[:, 0], state["context"][0]], dim=-1))
        return logits.log_softmax(dim=-1), {"h": h.transpose(0, 1), "context": state["context"]}

    def row(self, b):
        """Step inputs of row b alone."""
        return select_state(self.state, torch.tensor([b])), self.first[b : b + 1]


def no_eos_step(step, eos_id):
    """The step with eos made (practically) impossible, so rows run to their limits."""

    def wrapped(prev, state):
        log_probs, state = step(prev, state)
        return log_probs.index_fill(1, torch.tensor([eos_id]), -50.0), state

    return wrapped


def some_eos(model):
    """An eos id that greedy decoding emits early in some rows but not others."""
    out = Greedy().decode(model.step, model.state, model.first, 8)
    return int(out[0, 2])


def lp(length, alpha):
    return ((5 + length) / 6) ** alpha


def replay(step, state, first, tokens, eos_id):
    """Sum of the step's log-probs of `tokens` (up to and including eos), and that length."""
    total, prev = 0.0, first
    for t, token in enumerate(tokens.tolist()):
        log_probs, state = step(prev, state)
        total += float(log_probs[0, token])
        if token == eos_id:
            return total, t + 1
        prev = torch.tensor([token])
    return total, len(tokens)


# --- state helpers --------------------------------------------------------------------------------
def test_state_helpers_map_every_tensor_of_a_nested_state_on_dim_0():
    state = {"a": torch.arange(3), "b": [torch.arange(6).view(3, 2), (torch.arange(3) * 10, None)]}
    picked = select_state(state, torch.tensor([2, 0]))
    assert picked["a"].tolist() == [2, 0]
    assert picked["b"][0].tolist() == [[4, 5], [0, 1]]
    assert picked["b"][1][0].tolist() == [20, 0] and picked["b"][1][1] is None
    assert isinstance(picked["b"], list) and isinstance(picked["b"][1], tuple)
    repeated = repeat_state(state, 2)
    assert repeated["a"].tolist() == [0, 0, 1, 1, 2, 2]
    assert repeated["b"][0].shape == (6, 2) and repeated["b"][1][0].tolist() == [0, 0, 10, 10, 20, 20]
    assert select_state(None, torch.tensor([0])) is None


# --- per-row max_len ---------------------------------------------------------------------------------
LIMITS = torch.tensor([2, 5, 0, 7, 3])
EOS = 4


@pytest.mark.parametrize(
    "strategy", [Greedy(), Sampling(), BeamSearch(beam_size=3)], ids=["greedy", "sampling", "beam"]
)
def test_each_row_stops_at_its_own_limit_and_is_filled_with_eos(strategy):
    model = TinyModel()
    step = no_eos_step(model.step, EOS)
    generator = torch.Generator().manual_seed(0)
    out = strategy.decode(step, model.state, model.first, LIMITS, eos_id=EOS, generator=generator)
    assert out.shape == (5, 7)  # as many steps as the longest limit
    for b, limit in enumerate(LIMITS.tolist()):
        assert (out[b, :limit] != EOS).all() and (out[b, limit:] == EOS).all()
        if not isinstance(strategy, Sampling):  # deterministic: the row alone, with its limit as an int
            state, first = model.row(b)
            assert torch.equal(out[b, :limit], strategy.decode(step, state, first, limit, eos_id=EOS)[0])


def test_greedy_with_limits_is_the_unlimited_output_cut_per_row():
    model = TinyModel()
    step = no_eos_step(model.step, EOS)
    limited = Greedy().decode(step, model.state, model.first, LIMITS, eos_id=EOS)
    unlimited = Greedy().decode(step, model.state, model.first, 7)
    for b, limit in enumerate(LIMITS.tolist()):
        assert torch.equal(limited[b, :limit], unlimited[b, :limit])


@pytest.mark.parametrize("strategy", [Greedy(), BeamSearch(beam_size=2)], ids=["greedy", "beam"])
def test_per_row_limits_need_an_eos_id(strategy):
    model = TinyModel()
    with pytest.raises(ValueError, match="eos_id"):
        strategy.decode(model.step, model.state, model.first, LIMITS)


@pytest.mark.parametrize("strategy", [Greedy(), BeamSearch(beam_size=3)], ids=["greedy", "beam"])
def test_decoding_stops_early_once_every_row_has_finished(strategy):
    model = TinyModel()
    first, eos = torch.tensor([0, 3]), 5
    # Make eos certain at the second step of every hypothesis: all finish after 2 tokens at most.
    calls = []

    def step(prev, state):
        log_probs, state = model.step(prev, state)
        calls.append(1)
        if len(calls) == 2:
            log_probs = torch.full_like(log_probs, -50.0).index_fill(1, torch.tensor([eos]), 0.0)
        return log_probs, state

    out = strategy.decode(step, select_state(model.state, torch.tensor([0, 1])), first, 20, eos_id=eos)
    assert out.shape[1] <= 2 and len(calls) == out.shape[1]
    assert (out[:, -1] == eos).all()


# --- beam search -------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_eos", [False, True])
@pytest.mark.parametrize("max_len", [9, "per_row"])
def test_beam_size_1_is_greedy(with_eos, max_len):
    model = TinyModel()
    eos = some_eos(model) if with_eos or max_len == "per_row" else None
    max_len = torch.tensor([9, 4, 6, 1, 8]) if max_len == "per_row" else max_len
    greedy = Greedy().decode(model.step, model.state, model.first, max_len, eos_id=eos)
    beam = BeamSearch(beam_size=1, length_penalty=0.6).decode(model.step, model.state, model.first, max_len, eos_id=eos)
    assert torch.equal(beam, greedy)
    if eos is not None:
        assert (greedy == eos).any(dim=1).any()  # eos did happen, so the test covers finished rows


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_n_best_are_sorted_and_scored_by_their_log_probs_over_lp(alpha):
    model = TinyModel()
    eos = some_eos(model)
    beam = BeamSearch(beam_size=4, length_penalty=alpha, n_best=4)
    tokens, scores = beam.search(model.step, model.state, model.first, 10, eos_id=eos)
    assert tokens.shape[:2] == (5, 4) and scores.shape == (5, 4)
    assert (scores[:, 1:] <= scores[:, :-1]).all()
    finished = 0
    for b in range(5):
        assert len({tuple(h) for h in tokens[b].tolist()}) == 4  # four different hypotheses
        state, first = model.row(b)
        for k in range(4):
            total, length = replay(model.step, state, first, tokens[b, k], eos)
            assert (tokens[b, k, length:] == eos).all()
            finished += length < tokens.shape[2] or int(tokens[b, k, -1]) == eos
            assert math.isclose(float(scores[b, k]), total / lp(length, alpha), rel_tol=1e-5, abs_tol=1e-5)
    assert 0 < finished < 20  # both finished and unfinished hypotheses were checked


def test_beam_finds_a_better_hypothesis_than_greedy():
    # The best of a beam scores at least greedy's hypothesis on at least one row, strictly better on some.
    model = TinyModel()
    eos = some_eos(model)
    greedy = Greedy().decode(model.step, model.state, model.first, 8, eos_id=eos)
    _, scores = BeamSearch(beam_size=6, length_penalty=0.0).search(model.step, model.state, model.first, 8, eos_id=eos)
    greedy_scores = torch.tensor([replay(model.step, *model.row(b), greedy[b], eos)[0] for b in range(5)])
    assert (scores[:, 0] >= greedy_scores - 1e-5).all() and (scores[:, 0] > greedy_scores + 1e-3).any()


def short_or_long_step():
    """From token 0: eos (1) with p=.55 or 'a' (2) with p=.45; a -> b (3) .95; b -> eos .99.
    Short: [eos], log .55 = -0.60; long: [a, b, eos], log(.45 * .95 * .99) = -0.86."""
    probs = torch.full((4, 4), 1e-6)
    probs[0, 1], probs[0, 2] = 0.55, 0.45
    probs[2, 3], probs[2, 1] = 0.95, 0.05
    probs[3, 1], probs[3, 3] = 0.99, 0.01
    probs[1, 1] = 1.0
    table = (probs / probs.sum(-1, keepdim=True)).log()

    def step(prev, state):
        return table[prev], state

    return step


@pytest.mark.parametrize("alpha, expected", [(0.0, [1, 1, 1]), (3.0, [2, 3, 1])])
def test_length_penalty_decides_between_a_short_and_a_long_hypothesis(alpha, expected):
    # alpha 0: -0.60 beats -0.86. alpha 3: lp(1) = 1, lp(3) = (8/6)**3 = 2.37: -0.60 loses to -0.36.
    tokens, scores = BeamSearch(beam_size=2, length_penalty=alpha, n_best=2).search(
        short_or_long_step(), None, torch.tensor([0]), 6, eos_id=1
    )
    assert tokens.shape == (1, 2, 3)  # both finished after 3 steps: the search stopped there
    assert tokens[0, 0].tolist() == expected
    assert sorted(tokens[0].tolist()) == [[1, 1, 1], [2, 3, 1]]
    short, long = math.log(0.55), math.log(0.45 * 0.95 * 0.99)
    assert scores[0].tolist() == pytest.approx(
        sorted([short / lp(1, alpha), long / lp(3, alpha)], reverse=True), abs=1e-4
    )


@pytest.mark.parametrize("with_eos", [False, True])
def test_batching_does_not_change_beam_results(with_eos):
    model = TinyModel()
    eos = some_eos(model) if with_eos else None
    max_len = torch.tensor([9, 4, 6, 1, 8]) if with_eos else 7
    beam = BeamSearch(beam_size=3, length_penalty=1.0, n_best=3)
    tokens, scores = beam.search(model.step, model.state, model.first, max_len, eos_id=eos)
    for b in range(5):
        state, first = model.row(b)
        alone_max = max_len[b : b + 1] if with_eos else max_len
        alone, alone_scores = beam.search(model.step, state, first, alone_max, eos_id=eos)
        steps = alone.shape[2]
        assert torch.equal(tokens[b, :, :steps], alone[0])
        if with_eos:
            assert (tokens[b, :, steps:] == eos).all()
        torch.testing.assert_close(scores[b], alone_scores[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam_size": 0}, r"decoding.beam_size=0: expected an integer >= 1"),
        ({"beam_size": 2, "n_best": 3}, r"at most beam_size=2 hypotheses per row; asked for 3 \(decoding.n_best"),
        ({"n_best": 0}, r"decoding.n_best=0: expected an integer >= 1"),
        ({"length_penalty": -0.5}, r"decoding.length_penalty=-0.5: expected a number >= 0"),
    ],
)
def test_invalid_beam_options(options, message):
    with pytest.raises(ConfigError, match=message):
        DECODING.build({"name": "beam", **options}, "decoding")


# --- on a language model -----------------------------------------------------------------------------
@pytest.fixture(params=["gru", "lstm"])
def language_model(request, compose_config, tiny_text_file):
    cfg = compose_config(
        [
            "data=text_file",
            f"data.path={tiny_text_file}",
            f"encoder={request.param}",
            "encoder.hidden_size=8",
            "encoder.num_layers=2",
            "task.embedding_dim=4",
        ]
    )
    data = TextStreamData(**{k: v for k, v in container(cfg.data).items() if k != "name"})
    torch.manual_seed(0)
    return build_task(cfg, data).eval()


def test_beam_on_a_language_model(language_model):
    task = language_model
    greedy = task.generate("First", 20, Greedy(), num_samples=3)
    assert len(set(greedy)) == 1  # greedy's n draws are all the same
    assert task.generate("First", 20, BeamSearch(beam_size=1)) == greedy[:1]
    beams = task.generate("First", 20, BeamSearch(beam_size=4), num_samples=3)  # the 3 best of 4 beams
    assert len(beams) == 3 and len(set(beams)) == 3 and all(len(b) == len("First") + 20 for b in beams)
    assert beams[:1] == task.generate("First", 20, BeamSearch(beam_size=4))


def test_beam_scores_on_a_language_model_match_the_model_run_on_the_whole_text(language_model):
    # If beams' states were mixed up when reordered, the search's score would not be the model's.
    task = language_model
    ids = torch.tensor([task.tokenizer.encode("First")] * 2)  # (2, P)
    with torch.no_grad():
        _, state = task(ids[:, :-1])
        tokens, scores = BeamSearch(beam_size=3, length_penalty=0.0, n_best=3).search(
            task.step_function, state, ids[:, -1], 12
        )
        for k in range(3):
            text = torch.cat([ids[:1], tokens[0, k][None]], dim=1)  # (1, P + 12)
            logits, _ = task(text[:, :-1])
            log_probs = logits.float().index_fill(-1, task.special_ids, float("-inf")).log_softmax(-1)
            expected = log_probs[0, ids.shape[1] - 1 :].gather(-1, tokens[0, k][:, None]).sum()
            assert math.isclose(float(scores[0, k]), float(expected), rel_tol=1e-4, abs_tol=1e-4)
