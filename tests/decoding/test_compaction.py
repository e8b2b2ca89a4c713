"""Finished rows (greedy, sampling) and sentences (beam search) leave the batch that the step sees.
Results must stay those of the search that kept them to the end: a copy of that search is the
reference here. Step functions are random tables, so both searches see bit-identical log-probs."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqtasks.decoding import BeamSearch, Greedy, Sampling
from seqtasks.decoding.base import row_limits
from seqtasks.decoding.candidates import best_extensions
from seqtasks.tensors import repeat_state, select_state

TABLES = 3
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)


# --- the searches before compaction: every row stays in the batch until all have finished -------------
def reference_token_by_token(strategy, step, state, first_tokens, max_len, eos_id=None, generator=None, n=None):
    n = n or strategy.n_best
    batch = first_tokens.shape[0]
    if n > 1:
        state, first_tokens = repeat_state(state, n), first_tokens.repeat_interleave(n)
        if isinstance(max_len, torch.Tensor):
            max_len = max_len.repeat_interleave(n)
    steps, limits = row_limits(max_len, eos_id)
    tokens, chosen = first_tokens, []
    scores = torch.zeros(first_tokens.shape, dtype=torch.float)
    finished = torch.zeros_like(first_tokens, dtype=torch.bool)
    if limits is not None:
        finished |= limits <= 0
    for t in range(steps):
        if eos_id is not None and bool(finished.all()):
            break
        log_probs, state = step(tokens, state)
        tokens = strategy.choose(log_probs, generator)
        picked = log_probs.float().gather(1, tokens[:, None]).squeeze(1)
        scores += picked.masked_fill(finished, 0.0)
        if eos_id is not None:
            tokens = tokens.masked_fill(finished, eos_id)
            finished |= tokens == eos_id
        if limits is not None:
            finished |= limits <= t + 1
        chosen.append(tokens)
    out = torch.stack(chosen, dim=1) if chosen else first_tokens.new_empty((first_tokens.shape[0], 0))
    out, scores = out.view(batch, n, out.shape[1]), scores.view(batch, n)
    scores, order = scores.sort(dim=1, descending=True, stable=True)
    return out.gather(1, order[..., None].expand_as(out)), scores


def reference_beam(strategy, step, state, first_tokens, max_len, eos_id=None, n=None):
    n = n or strategy.n_best
    steps, limits = row_limits(max_len, eos_id)
    batch, beams = first_tokens.shape[0], strategy.beam_size
    state = repeat_state(state, beams)
    tokens = first_tokens.repeat_interleave(beams)
    scores = torch.full((batch, beams), float("-inf"))
    scores[:, 0] = 0.0
    lengths = torch.zeros((batch, beams), dtype=torch.long)
    finished = torch.zeros((batch, beams), dtype=torch.bool)
    if limits is not None:
        limits = limits[:, None]
        finished |= limits <= 0
    hypotheses = first_tokens.new_empty((batch, beams, 0))
    first_beam = torch.arange(batch)[:, None] * beams
    for t in range(steps):
        if bool(finished.all()):
            break
        log_probs, state = step(tokens, state)
        vocab = log_probs.shape[-1]
        log_probs = log_probs.float().view(batch, beams, vocab)
        if eos_id is not None:
            only_eos = torch.full((vocab,), float("-inf"))
            only_eos[eos_id] = 0.0
            log_probs = torch.where(finished[..., None], only_eos, log_probs)
        # Ranked as the search ranks (tests/decoding/test_candidates.py checks that against every sum):
        # among exactly equal sums, which one is kept is the ranking's choice.
        scores, chosen = best_extensions(scores, log_probs, beams)
        parent, token = chosen // vocab, chosen % vocab
        history = hypotheses.gather(1, parent[..., None].expand(-1, -1, t))
        hypotheses = torch.cat([history, token[..., None]], dim=2)
        finished = finished.gather(1, parent)
        lengths = lengths.gather(1, parent) + (~finished).long()
        if eos_id is not None:
            finished |= token == eos_id
        if limits is not None:
            finished |= limits <= t + 1
        state = select_state(state, (first_beam + parent).view(-1))
        tokens = token.view(-1)
    normalised = scores / strategy.length_normaliser(lengths)
    normalised, order = normalised.sort(dim=-1, descending=True)
    best = order[:, :n]
    out = hypotheses.gather(1, best[..., None].expand(-1, -1, hypotheses.shape[2]))
    return out, normalised[:, :n]


# --- a random model ------------------------------------------------------------------------------------
class TableModel:
    """log p(next | prev) from one of TABLES random tables, chosen per row by its key and its step
    count: the state {"key": (B,), "t": [(B,)]} is nested and batch-first, and a row given another
    row's state would (most likely) choose differently. Records the rows of every step call."""

    def __init__(self, seed, batch, vocab, eos_bias):
        generator = torch.Generator().manual_seed(seed)
        table = 2 * torch.randn(TABLES, vocab, vocab, generator=generator)
        table[..., 0] += eos_bias  # eos is token 0 when there is one
        self.table = table.log_softmax(-1)  # (TABLES, V, V)
        self.state = {
            "key": torch.randint(TABLES, (batch,), generator=generator),
            "t": [torch.zeros(batch, dtype=torch.long)],
        }
        self.first = torch.randint(vocab, (batch,), generator=generator)
        self.rows = []

    def step(self, prev, state):
        self.rows.append(prev.shape[0])
        t = state["t"][0]
        return self.table[(state["key"] + t) % TABLES, prev], {"key": state["key"], "t": [t + 1]}


@st.composite
def problems(draw, min_vocab=2):
    """(model, max_len: an int or per-row limits, eos_id or None)."""
    batch = draw(st.integers(0, 6))
    model = TableModel(
        draw(st.integers(0, 2**16)), batch, draw(st.integers(min_vocab, 8)), draw(st.sampled_from([-2.0, 0.0, 2.0]))
    )
    eos_id = draw(st.sampled_from([0, None]))
    per_row = eos_id is not None and draw(st.booleans())
    max_len = (
        torch.tensor(draw(st.lists(st.integers(0, 9), min_size=batch, max_size=batch)), dtype=torch.long)
        if per_row
        else draw(st.integers(0, 9))
    )
    return model, max_len, eos_id


def finish_steps(tokens, max_len, eos_id):
    """tokens (B, N, T) -> (B*N,): the steps each row took before it finished (T if it never did)."""
    steps = tokens.shape[2]
    limits = max_len if isinstance(max_len, torch.Tensor) else torch.tensor(max_len)
    limits = limits.expand(tokens.shape[0])[:, None].expand(tokens.shape[:2])  # (B, N)
    if eos_id is None:
        return torch.full((tokens.shape[0] * tokens.shape[1],), steps)
    before_eos = (tokens != eos_id).long().cumprod(-1).sum(-1)  # (B, N): tokens before the first eos
    return torch.minimum(before_eos + 1, limits).clamp(max=steps).flatten()  # eos is a step too


def assert_rows_left_the_batch(rows, reference_rows, finish):
    """Rows leave once at least a quarter of the step's batch has finished; the first time, that is
    a quarter of every row. Never before the step they finished, so never more rows than before."""
    assert len(rows) == len(reference_rows)
    assert all(a >= b for a, b in zip(rows, rows[1:], strict=False))  # the batch only shrinks
    finished_before = [int((finish <= t).sum()) for t in range(len(rows))]  # before each step
    leaves = any(0 < done and 4 * done >= len(finish) for done in finished_before)
    assert (sum(rows) < sum(reference_rows)) == leaves


# --- greedy and sampling -------------------------------------------------------------------------------
@PROPERTY
@given(problem=problems(), n=st.integers(1, 3), strategy=st.sampled_from([Greedy(), Sampling(temperature=0.0)]))
def test_token_by_token_results_are_those_of_the_search_that_kept_finished_rows(problem, n, strategy):
    model, max_len, eos_id = problem
    tokens, scores = strategy.search(model.step, model.state, model.first, max_len, eos_id=eos_id, n=n)
    rows, model.rows = model.rows, []
    expected, expected_scores = reference_token_by_token(
        strategy, model.step, model.state, model.first, max_len, eos_id, n=n
    )
    assert torch.equal(tokens, expected)
    assert torch.equal(scores, expected_scores)
    assert_rows_left_the_batch(rows, model.rows, finish_steps(expected, max_len, eos_id))


def replayed_scores(model, tokens, finish):
    """The model's log-probs of tokens (B, N, T), summed over each hypothesis's first `finish` (B*N,)
    steps: every hypothesis run alone from its own row's state, all in one batch."""
    batch, n, steps = tokens.shape
    tokens = tokens.flatten(0, 1)  # (B*N, T)
    state, prev, total = repeat_state(model.state, n), model.first.repeat_interleave(n), torch.zeros(batch * n)
    for t in range(steps):
        log_probs, state = model.step(prev, state)
        total += log_probs.gather(1, tokens[:, t : t + 1]).squeeze(1).masked_fill(finish <= t, 0.0)
        prev = tokens[:, t]
    return total.view(batch, n)


@PROPERTY
@given(problem=problems(), n=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_samples_stay_reproducible_and_scored_by_their_own_rows(problem, n, seed):
    # Dropping rows changes which random numbers the others draw, so no reference to compare with:
    # a seed still fixes the samples, and each one's score is its own row's log-probs.
    model, max_len, eos_id = problem
    strategy = Sampling(temperature=1.0)

    def sample():
        generator = torch.Generator().manual_seed(seed)
        return strategy.search(model.step, model.state, model.first, max_len, eos_id, generator, n=n)

    (tokens, scores), (again, again_scores) = sample(), sample()
    assert torch.equal(tokens, again) and torch.equal(scores, again_scores)
    replayed = replayed_scores(model, tokens, finish_steps(tokens, max_len, eos_id))
    torch.testing.assert_close(scores, replayed, rtol=1e-5, atol=1e-5)


# --- beam search ---------------------------------------------------------------------------------------
@st.composite
def beam_problems(draw):
    beams = draw(st.integers(1, 4))
    # At least as many tokens as beams, so every kept hypothesis has a finite score; the K beams of a
    # row allowed no step (limit 0) are the exception, their -inf hypotheses compared by score alone.
    problem = draw(problems(min_vocab=max(beams, 2)))
    strategy = BeamSearch(
        beam_size=beams, length_penalty=draw(st.sampled_from([0.0, 0.6, 1.0])), n_best=draw(st.integers(1, beams))
    )
    return (*problem, strategy)


@PROPERTY
@given(problem=beam_problems())
def test_beam_results_are_those_of_the_search_that_kept_finished_sentences(problem):
    model, max_len, eos_id, strategy = problem
    tokens, scores = strategy.search(model.step, model.state, model.first, max_len, eos_id=eos_id)
    rows, model.rows = model.rows, []
    expected, expected_scores = reference_beam(strategy, model.step, model.state, model.first, max_len, eos_id)
    assert tokens.shape == expected.shape
    assert torch.equal(scores, expected_scores)
    scored = expected_scores.isfinite()  # (B, N)
    assert torch.equal(tokens[scored], expected[scored])
    # A sentence leaves after the step its own search (searched alone) would have stopped at.
    alone_steps = []
    for b in range(len(model.first)):
        alone_max_len = max_len[b : b + 1] if isinstance(max_len, torch.Tensor) else max_len
        state = select_state(model.state, torch.tensor([b]))
        alone_steps.append(
            reference_beam(strategy, model.step, state, model.first[b : b + 1], alone_max_len, eos_id)[0].shape[2]
        )
    searched = [sum(max(s, 1) > t for s in alone_steps) for t in range(expected.shape[2])]
    assert rows == [strategy.beam_size * sentences for sentences in searched]
