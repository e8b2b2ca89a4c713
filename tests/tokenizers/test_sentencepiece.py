"""SentencePieceTokenizer: in-memory training with fixed special ids, lossless round trips,
unseen characters as <unk>, state and saved .model files that reproduce the same ids."""

from __future__ import annotations

import json
import logging
import random

import pytest
import sentencepiece as spm

from seqtasks.configuration.registry import TOKENIZERS
from seqtasks.errors import ConfigError
from seqtasks.tokenizers import SentencePieceTokenizer, Tokenizer

WORDS = (
    "the a dog cat man woman child runs jumps sits walks plays on in under near red blue green "
    "small big street park water ball grass bench river tree"
).split()


def sentences(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))).capitalize() + "." for _ in range(n)]


@pytest.fixture(scope="module")
def fitted() -> SentencePieceTokenizer:
    return SentencePieceTokenizer(vocab_size=80).fit(sentences())


def test_special_ids_are_fixed(fitted):
    vocab = fitted.vocab
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert len(fitted) == 80


@pytest.mark.parametrize(("model_type", "vocab_size"), [("unigram", 60), ("bpe", 60), ("char", 60), ("word", 500)])
def test_training_text_round_trips(model_type, vocab_size):
    texts = sentences()
    tokenizer = SentencePieceTokenizer(vocab_size=vocab_size, model_type=model_type).fit(texts)
    for text in texts[:50]:
        ids = tokenizer.encode(text)
        assert ids and all(i >= 4 for i in ids)  # no <bos>/<eos> added, nothing unknown
        assert tokenizer.decode(ids) == text


def test_decode_drops_special_ids(fitted):
    ids = fitted.encode("The dog runs.")
    assert fitted.decode([2, *ids, 3, 0, 0]) == "The dog runs."


def test_unseen_characters_become_unk_without_error(fitted):
    ids = fitted.encode("Der Hund läuft 🐕 über 草")
    assert fitted.vocab.unk_id in ids
    assert isinstance(fitted.decode(ids), str)
    assert fitted.encode("") == []


def test_training_is_deterministic():
    texts = sentences()
    first = SentencePieceTokenizer(vocab_size=70).fit(texts)
    second = SentencePieceTokenizer(vocab_size=70).fit(texts)
    assert first.model_bytes() == second.model_bytes()


def test_state_round_trip_gives_identical_ids(fitted):
    state = json.loads(json.dumps(fitted.state()))  # JSON-able
    assert state["name"] == "sentencepiece" and state["vocab_size"] == 80 and state["model_type"] == "unigram"
    restored = Tokenizer.from_state(state)
    assert isinstance(restored, SentencePieceTokenizer)
    assert restored.vocab.tokens == fitted.vocab.tokens
    for text in [*sentences(20, seed=1), "unseen ÿ characters"]:
        assert restored.encode(text) == fitted.encode(text)


def test_save_writes_a_model_sentencepiece_loads(fitted, tmp_path):
    paths = fitted.save(tmp_path / "tokenizers", "source")
    assert [p.name for p in paths] == ["source.model", "source.vocab"]
    processor = spm.SentencePieceProcessor(model_file=str(paths[0]))
    for text in sentences(20, seed=2):
        assert processor.encode(text, out_type=int) == fitted.encode(text)
    lines = paths[1].read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(fitted)
    assert lines[0].split("\t")[0] == "<pad>" and all(len(line.split("\t")) == 2 for line in lines)
    float(lines[10].split("\t")[1])


def test_base_save_writes_state_json(tmp_path):
    char = TOKENIZERS.build({"name": "char"}).fit(["abc"])
    [path] = char.save(tmp_path, "target")
    assert path.name == "target.json"
    assert Tokenizer.from_state(json.loads(path.read_text())).encode("cab") == char.encode("cab")


def test_pickles(fitted):
    import pickle

    assert pickle.loads(pickle.dumps(fitted)).encode("The cat sits.") == fitted.encode("The cat sits.")


def test_bad_model_type_names_the_key_and_choices():
    with pytest.raises(
        ConfigError,
        match=r"tokenizer\.model_type='bpee': expected one of 'unigram', 'bpe', 'char', "
        r"'word' \(did you mean 'bpe'\?\)",
    ):
        TOKENIZERS.build({"name": "sentencepiece", "model_type": "bpee"}, "tokenizer")


def test_vocab_size_is_an_upper_bound_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        tokenizer = SentencePieceTokenizer(vocab_size=8000).fit(sentences(50))
    assert 4 < len(tokenizer) < 8000
    assert "tokenizer.vocab_size=8000" in caplog.text and f"only {len(tokenizer)}" in caplog.text


def test_too_small_vocab_says_which_size_to_use():
    with pytest.raises(ConfigError, match=r"tokenizer\.vocab_size=10 is too small.*set tokenizer\.vocab_size=\d+"):
        SentencePieceTokenizer(vocab_size=10).fit(sentences())


def test_no_text_is_a_config_error():
    with pytest.raises(ConfigError, match="no training text"):
        SentencePieceTokenizer().fit(["", "  "])


def test_unfitted_tokenizer_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        SentencePieceTokenizer().encode("x")
