"""Word tokenizer: vocabulary order and limits, <unk> for unseen words, state round trip."""

from __future__ import annotations

import pytest

from seqtasks.configuration.registry import TOKENIZERS
from seqtasks.errors import ConfigError
from seqtasks.tokenizers import Tokenizer, WordTokenizer

TEXTS = ["the film is good", "the film is bad", "The plot , the acting"]


def test_vocabulary_is_specials_then_words_by_frequency():
    tokenizer = WordTokenizer().fit(TEXTS)
    assert tokenizer.vocab.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    # "the" 3x, then "film"/"is" 2x (ties alphabetical), then the singletons alphabetically.
    assert tokenizer.vocab.tokens[4:] == ["the", "film", "is", ",", "The", "acting", "bad", "good", "plot"]


def test_lowercase_min_frequency_and_max_size():
    lowered = WordTokenizer(lowercase=True).fit(TEXTS)
    assert "The" not in lowered.vocab
    assert lowered.encode("THE Film") == [lowered.vocab.id("the"), lowered.vocab.id("film")]
    frequent = WordTokenizer(min_frequency=2).fit(TEXTS)
    assert frequent.vocab.tokens[4:] == ["the", "film", "is"]
    assert frequent.encode("the good film") == [4, frequent.vocab.unk_id, 5]
    capped = WordTokenizer(max_size=6).fit(TEXTS)
    assert capped.vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "the", "film"]


def test_encode_decode_and_state_round_trip():
    tokenizer = WordTokenizer(lowercase=True, min_frequency=1).fit(TEXTS)
    ids = tokenizer.encode("the  acting is\tgood")  # any whitespace separates words
    assert tokenizer.decode(ids) == "the acting is good"
    restored = Tokenizer.from_state(tokenizer.state())
    assert isinstance(restored, WordTokenizer)
    assert restored.vocab.tokens == tokenizer.vocab.tokens
    assert restored.encode("the plot") == tokenizer.encode("the plot")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_frequency": 0}, "tokenizer.min_frequency=0: expected an integer >= 1"),
        ({"max_size": 3}, "tokenizer.max_size must exceed the 4 specials"),
        ({"specials": ["<pad>"]}, "tokenizer.specials must include <unk>"),
    ],
)
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        TOKENIZERS.build({"name": "word", **options}, "tokenizer")
