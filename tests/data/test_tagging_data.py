"""The `conllu` tagging datamodule: words and tags aligned past multiword tokens, empty nodes and
comments; unseen-word flags; batches; file locations; errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqtasks.configuration.registry import DATASETS
from seqtasks.data.tagging import IGNORE, TaggingData
from seqtasks.errors import ConfigError, DataError

WORD_TOKENIZER = {"name": "word", "lowercase": False, "min_frequency": 1, "max_size": None}


def _line(*columns: str) -> str:
    return "\t".join(columns) + "\n"


def word(i: int | str, form: str, upos: str, xpos: str = "X") -> str:
    return _line(str(i), form, "_", upos, xpos, "_", "_", "_", "_", "_")


# Lines: 1-2 comments, 3-14 tokens (3-4 range on line 5, 8.1 on line 12), 15 blank, 16 comment, 17-18, 19 blank.
TRAIN = (
    "# sent_id = s1\n# text = They said can't come, so Bill today.\n"
    + word(1, "They", "PRON", "PRP")
    + word(2, "said", "VERB", "VBD")
    + _line("3-4", "can't", *["_"] * 8)
    + word(3, "ca", "AUX", "MD")
    + word(4, "n't", "PART", "RB")
    + word(5, "come", "VERB", "VB")
    + word(6, ",", "PUNCT", ",")
    + word(7, "so", "ADV", "RB")
    + word(8, "Bill", "PROPN", "NNP")
    + _line("8.1", "come", "_", "VERB", "VB", "_", "_", "_", "_", "_")
    + word(9, "today", "NOUN", "NN")
    + word(10, ".", "PUNCT", ".")
    + "\n"
    + "# sent_id = s2\n"
    + word(1, "they", "PRON", "PRP")
    + word(2, "came", "VERB", "VBD")
    + "\n"
)
S1_FORMS = ["They", "said", "ca", "n't", "come", ",", "so", "Bill", "today", "."]
S1_UPOS = ["PRON", "VERB", "AUX", "PART", "VERB", "PUNCT", "ADV", "PROPN", "NOUN", "PUNCT"]
VAL = "# sent_id = v1\n" + word(1, "Bill", "PROPN") + word(2, "sang", "VERB") + word(3, "THEY", "PRON") + "\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for split, text in {"train": TRAIN, "val": VAL}.items():
        paths[split] = tmp_path / f"{split}.conllu"
        paths[split].write_text(text, encoding="utf-8")
    return paths


def make(files, column: str = "upos", **options) -> TaggingData:
    data = TaggingData(
        train=str(files["train"]), val=str(files["val"]), test=str(files["val"]), column=column, **options
    )
    data.build_tokenizers(WORD_TOKENIZER)
    return data


@pytest.mark.parametrize("column", ["upos", "xpos"])
def test_words_and_tags_align_past_ranges_empty_nodes_and_comments(files, column):
    data = make(files, column)
    tags = data.tokenizers["tags"].vocab.tokens
    first, second = data.encoded("train")
    words, chars = data.tokenizers["words"], data.tokenizers["chars"]
    assert [chars.decode(c) for c in first.char_ids] == S1_FORMS
    assert [chars.decode(c) for c in second.char_ids] == ["they", "came"]
    expected = S1_UPOS if column == "upos" else ["PRP", "VBD", "MD", "RB", "VB", ",", "RB", "NNP", "NN", "."]
    assert [tags[t] for t in first.tag_ids] == expected
    assert "can't" not in words.vocab  # the multiword token is not a word
    assert words.vocab.unk_id not in [*first.word_ids, *second.word_ids]  # every training word is known


def test_unseen_words_are_those_out_of_the_case_sensitive_training_vocabulary(files):
    data = make(files)
    (sentence,) = data.encoded("val")
    chars = data.tokenizers["chars"]
    assert [list(c) for c in sentence.char_ids] == [chars.encode(form) for form in ["Bill", "sang", "THEY"]]
    unk = data.tokenizers["words"].vocab.unk_id
    assert sentence.word_ids[1] == sentence.word_ids[2] == unk != sentence.word_ids[0]
    batch = next(iter(data.val_dataloader()))
    assert batch.unseen[0].tolist() == [False, True, True]


def test_batches_pad_tags_flag_unseen_and_share_the_characters_of_repeated_forms(files):
    data = make(files, max_tokens=100)
    (batch,) = list(data.train_dataloader())
    order = batch.indices
    assert (
        sorted(order) == [0, 1]
        and batch.words.shape == (2, 10)
        and batch.lengths.tolist() == [[10, 2][i] for i in order]
    )
    row = order.index(1)  # the two-word sentence
    assert (batch.tags[row, 2:] == IGNORE).all() and (batch.tags[row, :2] != IGNORE).all()
    assert batch.mask.tolist()[row] == [True, True] + [False] * 8
    chars = data.tokenizers["chars"]
    forms = [
        [
            chars.decode(batch.chars[batch.forms[r, t], : batch.char_lengths[batch.forms[r, t]]].tolist())
            for t in range(int(batch.lengths[r]))
        ]
        for r in range(2)
    ]
    assert forms[order.index(0)] == S1_FORMS and forms[row] == ["they", "came"]
    assert batch.chars.shape[0] == len(set(S1_FORMS) | {"they", "came"})  # "come" and "." would repeat
    moved = batch.to("cpu")
    assert moved.indices == batch.indices and torch.equal(moved.forms, batch.forms)


def test_files_resolve_under_the_root_unless_absolute(tmp_path, files):
    data = TaggingData(root=str(tmp_path), test=str(files["val"]))
    assert data.files["train"] == tmp_path / "ud_english_ewt" / "en_ewt-ud-train.conllu"
    assert data.files["test"] == files["val"] and data.has_test
    assert not TaggingData(root=str(tmp_path), test=None).has_test
    with pytest.raises(ConfigError, match="data.column='deprel': expected one of 'upos', 'xpos'"):
        DATASETS.build({"name": "conllu", "column": "deprel"}, "data")
    with pytest.raises(ConfigError, match="tokenizer=word"):
        TaggingData(train=str(files["train"])).build_tokenizers({"name": "char"})


def test_a_malformed_line_names_the_file_and_line(files, tmp_path):
    bad = tmp_path / "bad.conllu"
    bad.write_text(TRAIN.replace(word(2, "came", "VERB", "VBD"), "2\tcame\tVERB\n"), encoding="utf-8")
    with pytest.raises(DataError, match=rf"{bad}:18: expected 10 tab-separated columns"):
        TaggingData(train=str(bad), val=str(files["val"])).build_tokenizers(WORD_TOKENIZER)


def test_a_tag_training_never_saw_names_the_file_and_word_line(files, tmp_path):
    data = make(files)
    test = tmp_path / "test.conllu"
    test.write_text(
        "# c\n"
        + word(1, "Bill", "PROPN")
        + _line("2-3", "xy", *["_"] * 8)
        + word(2, "x", "PROPN")
        + word(3, "y", "INTJ")
        + "\n",
        encoding="utf-8",
    )
    data = TaggingData(train=str(files["train"]), val=str(files["val"]), test=str(test))
    data.build_tokenizers(WORD_TOKENIZER)
    with pytest.raises(DataError, match=rf"{test}:5: word 3 \('y'\): UPOS tag 'INTJ' was not seen in training"):
        data.encoded("test")
    test.write_text(word(1, "Bill", "_") + "\n", encoding="utf-8")
    data.use_tokenizers(data.tokenizers)
    data._read.clear()
    with pytest.raises(DataError, match=rf"{test}:1: word 1 \('Bill'\) has no UPOS tag"):
        data.encoded("test")
