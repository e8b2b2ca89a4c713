"""The decoder: teacher-forced training and step-by-step decoding are the same computation, for
every cell, attention, initial state and input feeding."""

import itertools

import pytest
import torch

from seqtasks.configuration.registry import HEADS
from seqtasks.errors import ConfigError
from seqtasks.tensors import PER_INPUT, repeat_state, select_state

MEMORY_SIZE = 10
COMBINATIONS = [
    (cell, attention, init, feeding)
    for cell, attention, init, feeding in itertools.product(
        ["gru", "lstm", "rnn"], [None, "general", "additive"], ["bridge", "last", "zero"], [False, True]
    )
    if not (attention is None and (init == "zero" or feeding))
]


def build(cell="gru", attention="general", init="bridge", input_feeding=False, tie_embeddings=True):
    torch.manual_seed(0)
    decoder = HEADS.build(
        {
            "name": "decoder",
            "embedding_dim": 6,
            "rnn": {"name": cell, "hidden_size": MEMORY_SIZE, "num_layers": 2},
            "attention": None if attention is None else {"name": attention},
            "init": init,
            "input_feeding": input_feeding,
            "tie_embeddings": tie_embeddings,
            "dropout": 0.0,
        },
        "head",
        input_size=MEMORY_SIZE,
        vocab_size=13,
        pad_id=0,
    )
    return decoder.eval()


def initial_state(decoder, batch=3, source_len=5):
    memory = torch.randn(batch, source_len, MEMORY_SIZE)
    mask = torch.arange(source_len)[None] < torch.tensor([5, 2, 4])[:batch, None]
    return decoder.initial_state(memory, mask, torch.randn(batch, MEMORY_SIZE))


@pytest.mark.parametrize("cell,attention,init,input_feeding", COMBINATIONS)
def test_teacher_forcing_equals_stepping(cell, attention, init, input_feeding):
    decoder = build(cell, attention, init, input_feeding)
    state = initial_state(decoder)
    target = torch.randint(1, 13, (3, 7))
    logits, weights = decoder(target, state)  # (B, T, V)
    assert logits.shape == (3, 7, 13)
    assert (weights is None) == (attention is None)
    stepped = []
    for t in range(7):
        log_probs, state = decoder.step(target[:, t], state)
        stepped.append(log_probs)
    torch.testing.assert_close(torch.stack(stepped, 1), logits.log_softmax(-1), atol=1e-5, rtol=1e-5)


def test_state_is_batch_first_for_beam_search():
    decoder = build("lstm", "general", input_feeding=True)
    state = initial_state(decoder)
    tensors = [*state[PER_INPUT].values(), state["feed"], *state["rnn"]]
    assert all(t.shape[0] == 3 for t in tensors)
    # Selecting rows of the state gives the same predictions as decoding those rows alone.
    both, _ = decoder.step(torch.tensor([4, 5]), select_state(state, torch.tensor([2, 0])))
    alone, _ = decoder.step(torch.tensor([4]), select_state(state, torch.tensor([2])))
    torch.testing.assert_close(both[:1], alone)


@pytest.mark.parametrize("attention", ["dot", "general", "additive"])
def test_hypotheses_share_one_copy_of_their_source(attention):
    """K hypotheses per source over one row of memory per source (beam search's state) step as they
    do over K copies of it, reordered and with sources dropped."""
    decoder = build("gru", attention, input_feeding=True)
    state = initial_state(decoder)
    shared, copied = repeat_state(state, 4, per_input=False), repeat_state(state, 4)  # (3*4, ...) rows
    assert shared[PER_INPUT]["memory"].shape[0] == 3 and copied[PER_INPUT]["memory"].shape[0] == 12
    tokens = torch.randint(1, 13, (12,))
    from_shared, shared = decoder.step(tokens, shared)
    from_copies, copied = decoder.step(tokens, copied)
    torch.testing.assert_close(from_shared, from_copies, atol=1e-6, rtol=1e-6)
    # Hypotheses swap places and no source leaves: the sources' rows stay as they are, not copied.
    swap = torch.tensor([1, 0, 2, 3, 5, 4, 6, 7, 8, 9, 11, 10])
    kept = select_state(shared, swap, per_input=False)
    assert kept[PER_INPUT]["memory"] is shared[PER_INPUT]["memory"]
    from_kept, _ = decoder.step(tokens[swap], kept)
    from_copies, _ = decoder.step(tokens[swap], select_state(copied, swap))
    torch.testing.assert_close(from_kept, from_copies, atol=1e-6, rtol=1e-6)
    # Source 1 leaves; the other sources' hypotheses swap places among themselves.
    rows = torch.tensor([1, 0, 3, 2, 9, 8, 11, 10])
    shared = select_state(shared, rows, inputs=torch.tensor([0, 2]))
    from_shared, _ = decoder.step(tokens[rows], shared)
    from_copies, _ = decoder.step(tokens[rows], select_state(copied, rows))
    torch.testing.assert_close(from_shared, from_copies, atol=1e-6, rtol=1e-6)


def test_tied_embeddings_share_one_matrix():
    decoder = build(tie_embeddings=True)
    assert decoder.output.weight is decoder.embedding.weight
    assert build(tie_embeddings=False).output.weight is not build(tie_embeddings=False).embedding.weight


def test_bad_combinations_fail_clearly():
    with pytest.raises(ConfigError, match="head.init='first': expected one of 'bridge', 'last', 'zero'"):
        build(init="first")
    with pytest.raises(ConfigError, match="without attention sees the source only through its initial state"):
        build(attention=None, init="zero")
    with pytest.raises(ConfigError, match="head.init=last copies"):
        HEADS.build(
            {"name": "decoder", "rnn": {"name": "gru", "hidden_size": 8}, "attention": None, "init": "last"},
            input_size=MEMORY_SIZE,
            vocab_size=5,
        )
    with pytest.raises(ConfigError, match="bidirectional=false"):
        HEADS.build(
            {
                "name": "decoder",
                "rnn": {"name": "gru", "hidden_size": 8, "bidirectional": True},
                "attention": {"name": "general"},
            },
            input_size=MEMORY_SIZE,
            vocab_size=5,
        )
    with pytest.raises(ConfigError, match="head.rnn.hidden_size=0: expected an integer >= 1"):
        HEADS.build(
            {"name": "decoder", "rnn": {"name": "gru", "hidden_size": 0}, "attention": None},
            input_size=MEMORY_SIZE,
            vocab_size=5,
        )


def test_word_dropout_hides_previous_words_in_training_only_and_never_bos():
    decoder = HEADS.build(
        {
            "name": "decoder",
            "embedding_dim": 6,
            "rnn": {"name": "gru", "hidden_size": MEMORY_SIZE},
            "attention": {"name": "general"},
            "dropout": 0.0,
            "word_dropout": 0.5,
        },
        "head",
        input_size=MEMORY_SIZE,
        vocab_size=13,
        pad_id=0,
        unk_id=1,
    )
    decoder.word_dropout = 1.0  # every word (the config allows < 1): the outcome is certain
    state = initial_state(decoder)
    bos, one, other = torch.full((3, 1), 2), torch.randint(3, 13, (3, 6)), torch.randint(3, 13, (3, 6))
    unk = torch.cat([bos, torch.ones(3, 6, dtype=torch.long)], dim=1)
    # Training: every word after <bos> is <unk>, whatever it was.
    trained_one, _ = decoder.train()(torch.cat([bos, one], dim=1), state)
    trained_other, _ = decoder(torch.cat([bos, other], dim=1), state)
    torch.testing.assert_close(trained_one, trained_other)
    torch.testing.assert_close(trained_one, decoder(unk, state)[0])
    # <bos> is kept: the first step differs from an <unk> first step.
    assert not torch.allclose(trained_one[:, 0], decoder(torch.ones(3, 7, dtype=torch.long), state)[0][:, 0])
    # Evaluation: the words are seen.
    assert not torch.allclose(decoder.eval()(torch.cat([bos, one], dim=1), state)[0], trained_one)


def test_word_dropout_needs_an_unk_token():
    with pytest.raises(ConfigError, match="head.word_dropout replaces target tokens by <unk>"):
        HEADS.build(
            {"name": "decoder", "rnn": {"name": "gru", "hidden_size": 4}, "attention": None, "word_dropout": 0.1},
            "head",
            input_size=4,
            vocab_size=13,
            pad_id=0,
            unk_id=None,
        )
