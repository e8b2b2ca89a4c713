"""read_conllu / write_conllu: comments, multiword tokens, empty nodes, byte-identical round trips,
UPOS/XPOS replacement, and errors that name the file and line."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from seqtasks.data.conllu import Sentence, Token, read_conllu, sentence_from_tokens, write_conllu
from seqtasks.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EWT_DEV = SHARED_DATA / "ud_english_ewt" / "en_ewt-ud-dev.conllu"


def _line(*columns: str) -> str:
    return "\t".join(columns) + "\n"


# Line numbers (1-based): 1-3 comments, 4-15 token lines, 16 blank, 17 comment, 18-19 tokens, 20 blank.
TINY = (
    "# newdoc id = doc1\n"
    "# sent_id = s1\n"
    "# text = They said can't come, so Bill today.\n"
    + _line("1", "They", "they", "PRON", "PRP", "Case=Nom", "2", "nsubj", "2:nsubj", "_")
    + _line("2", "said", "say", "VERB", "VBD", "Tense=Past", "0", "root", "0:root", "_")
    + _line("3-4", "can't", "_", "_", "_", "_", "_", "_", "_", "_")
    + _line("3", "ca", "can", "AUX", "MD", "VerbForm=Fin", "5", "aux", "5:aux", "_")
    + _line("4", "n't", "not", "PART", "RB", "_", "5", "advmod", "5:advmod", "_")
    + _line("5", "come", "come", "VERB", "VB", "VerbForm=Inf", "2", "ccomp", "2:ccomp", "SpaceAfter=No")
    + _line("6", ",", ",", "PUNCT", ",", "_", "8", "punct", "8:punct", "_")
    + _line("7", "so", "so", "ADV", "RB", "_", "8", "advmod", "8:advmod", "_")
    + _line("8", "Bill", "Bill", "PROPN", "NNP", "Number=Sing", "2", "conj", "8.1:nsubj", "_")
    + _line("8.1", "come", "come", "VERB", "VB", "_", "_", "_", "2:conj", "CopyOf=5")
    + _line("9", "today", "today", "NOUN", "NN", "Number=Sing", "8", "orphan", "8.1:obl:tmod", "SpaceAfter=No")
    + _line("10", ".", ".", "PUNCT", ".", "_", "2", "punct", "2:punct", "_")
    + "\n"
    "# sent_id = s2\n"
    + _line("1", "Go", "go", "VERB", "VB", "Mood=Imp", "0", "root", "0:root", "_")
    + _line("2", "home", "home", "ADV", "RB", "_", "1", "advmod", "1:advmod", "_")
    + "\n"
)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.conllu"
    path.write_text(TINY, encoding="utf-8")
    return path


def _with_line(number: int, replacement: str) -> str:
    """TINY with its (1-based) line `number` replaced by `replacement` (without the newline)."""
    lines = TINY.split("\n")
    lines[number - 1] = replacement
    return "\n".join(lines)


def test_comments_are_kept_with_their_sentence(tiny):
    first, second = read_conllu(tiny)
    assert first.comments == ["# newdoc id = doc1", "# sent_id = s1", "# text = They said can't come, so Bill today."]
    assert second.comments == ["# sent_id = s2"]
    assert (first.line, second.line) == (1, 17)


def test_multiword_token_and_empty_node_kept_in_order_but_not_in_words(tiny):
    first, second = read_conllu(tiny)
    assert [t.id for t in first.lines] == ["1", "2", "3-4", "3", "4", "5", "6", "7", "8", "8.1", "9", "10"]
    assert [t.id for t in first.words] == [str(i) for i in range(1, 11)]
    assert [t.form for t in first.words][2:5] == ["ca", "n't", "come"]
    assert first.lines[2].is_multiword and first.lines[9].is_empty_node
    assert not first.lines[2].is_word and not first.lines[9].is_word
    assert [t.upos for t in second.words] == ["VERB", "ADV"]
    assert first.lines[0] == Token("1", "They", "they", "PRON", "PRP", "Case=Nom", "2", "nsubj", "2:nsubj", "_")


def test_round_trip_is_byte_identical(tiny, tmp_path):
    sentences = read_conllu(tiny)
    out = tmp_path / "out" / "again.conllu"
    write_conllu(sentences, out)
    assert out.read_bytes() == tiny.read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["again.conllu"]  # no partial file left behind


def test_writes_to_open_text_and_binary_files(tiny):
    sentences = read_conllu(tiny)
    text, binary = io.StringIO(), io.BytesIO()
    write_conllu(sentences, text)
    write_conllu(sentences, binary)
    assert text.getvalue() == TINY
    assert binary.getvalue() == TINY.encode("utf-8")


def test_upos_replacement_changes_only_column_4_of_word_lines(tiny, tmp_path):
    sentences = read_conllu(tiny)
    upos = [[f"T{i}" for i in range(len(s.words))] for s in sentences]
    out = tmp_path / "tagged.conllu"
    write_conllu(sentences, out, upos=upos)
    before, after = TINY.split("\n"), out.read_text(encoding="utf-8").split("\n")
    assert len(before) == len(after)
    changed = 0
    for old, new in zip(before, after, strict=True):
        old_columns, new_columns = old.split("\t"), new.split("\t")
        if len(old_columns) == 10 and old_columns[0].isdigit():
            assert new_columns[:3] == old_columns[:3] and new_columns[4:] == old_columns[4:]
            assert new_columns[3].startswith("T")
            changed += 1
        else:
            assert new == old  # comments, blank lines, multiword ranges and empty nodes untouched
    assert changed == 12
    again = read_conllu(out)
    assert [[t.upos for t in s.words] for s in again] == upos
    assert [t.upos for t in again[0].lines if not t.is_word] == ["_", "VERB"]
    assert [[t.upos for t in s.words] for s in sentences][1] == ["VERB", "ADV"]  # input not modified


def test_xpos_replacement(tiny):
    sentences = read_conllu(tiny)
    out = io.StringIO()
    write_conllu(sentences, out, xpos=[["X"] * 10, ["Y", "Z"]])
    lines = out.getvalue().split("\n")
    assert lines[17].split("\t")[3:5] == ["VERB", "Y"]
    assert lines[5].split("\t")[:5] == ["3-4", "can't", "_", "_", "_"]  # the range line


def test_tag_count_mismatch_names_the_sentence(tiny, tmp_path):
    sentences = read_conllu(tiny)
    with pytest.raises(ValueError, match=r"sentence 1: 3 upos tags given for 2 words"):
        write_conllu(sentences, tmp_path / "x.conllu", upos=[["X"] * 10, ["X"] * 3])
    with pytest.raises(ValueError, match=r"for 1 sentences, but there are 2"):
        write_conllu(sentences, tmp_path / "x.conllu", upos=[["X"] * 10])
    with pytest.raises(ValueError, match=r"sentence 0: upos tag 'A B\\t'"):
        write_conllu(sentences, tmp_path / "x.conllu", upos=[["A B\t"] * 10, ["X"] * 2])
    assert not (tmp_path / "x.conllu").exists()


@pytest.mark.parametrize(
    ("number", "replacement", "message"),
    [
        (5, "2\tsaid\tsay\tVERB", "expected 10 tab-separated columns, found 4"),
        (18, "1 Go go VERB VB Mood=Imp 0 root 0:root _", "expected 10 tab-separated columns, found 1"),
        (
            19,
            _line(*"2 home home ADV RB _ 1 advmod 1:advmod _ extra".split())[:-1],
            "expected 10 tab-separated columns, found 11",
        ),
        (
            8,
            _line(*"x n't not PART RB _ 5 advmod 5:advmod _".split())[:-1],
            "expected an integer word id, a range like 3-4 or an empty node like 8.1, found 'x'",
        ),
        (
            6,
            _line(*"3- can't _ _ _ _ _ _ _ _".split())[:-1],
            "expected an integer word id, a range like 3-4 or an empty node like 8.1, found '3-'",
        ),
        (
            13,
            _line(*"8.a come come VERB VB _ _ _ 2:conj _".split())[:-1],
            "expected an integer word id, a range like 3-4 or an empty node like 8.1, found '8.a'",
        ),
        (
            8,
            _line(*"5 n't not PART RB _ 5 advmod 5:advmod _".split())[:-1],
            "word id 5 out of order; expected 4 (word ids count 1, 2, 3, ... in each sentence)",
        ),
        (
            18,
            _line(*"0 Go go VERB VB _ 0 root 0:root _".split())[:-1],
            "word id 0 out of order; expected 1 (word ids count 1, 2, 3, ... in each sentence)",
        ),
        (5, "2\tsaid\tsay\t\tVBD\t_\t0\troot\t0:root\t_", "column 4 (UPOS) is empty; write '_' for no value"),
    ],
    ids=[
        "too-few-columns",
        "spaces-not-tabs",
        "too-many-columns",
        "non-integer-id",
        "bad-range",
        "bad-empty-node",
        "skipped-id",
        "zero-id",
        "empty-column",
    ],
)
def test_malformed_line_is_an_error_with_its_line_number(tmp_path, number, replacement, message):
    path = tmp_path / "bad.conllu"
    path.write_text(_with_line(number, replacement), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_conllu(path)
    assert str(caught.value) == f"{path}:{number}: {message}"
    assert caught.value.line == number and caught.value.path == path


def test_comment_after_tokens_is_an_error(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text(TINY.replace("\n\n# sent_id = s2", "\n# sent_id = s2"), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.conllu:16: comment line after token lines"):
        read_conllu(path)


def test_sentence_without_tokens_is_an_error(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text(TINY + "# sent_id = s3\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.conllu:21: sentence has comment lines but no token lines"):
        read_conllu(path)


@pytest.mark.parametrize("ending", ["\n", ""], ids=["newline", "no-newline"])
def test_missing_final_blank_line_is_tolerated(tmp_path, ending):
    path = tmp_path / "open.conllu"
    path.write_text(TINY[: -len("\n\n")] + ending, encoding="utf-8")
    sentences = read_conllu(path)
    assert [len(s.words) for s in sentences] == [10, 2]
    assert sentences[1].words[-1].form == "home"
    out = io.StringIO()
    write_conllu(sentences, out)
    assert out.getvalue() == TINY  # written back with the blank line


def test_extra_blank_lines_and_crlf_are_tolerated(tmp_path):
    path = tmp_path / "crlf.conllu"
    path.write_bytes(("\n\n" + TINY.replace("\n\n", "\n\n\n") + "\n").replace("\n", "\r\n").encode("utf-8"))
    sentences = read_conllu(path)
    assert [len(s.words) for s in sentences] == [10, 2]
    assert sentences[0].words[4].misc == "SpaceAfter=No"
    assert sentences[0].comments[0] == "# newdoc id = doc1" and sentences[0].line == 3


def test_reads_gzip(tmp_path):
    path = tmp_path / "tiny.conllu.gz"
    path.write_bytes(gzip.compress(TINY.encode("utf-8")))
    sentences = read_conllu(path)
    assert [len(s.words) for s in sentences] == [10, 2]
    out = io.BytesIO()
    write_conllu(sentences, out)
    assert out.getvalue() == TINY.encode("utf-8")


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.conllu"
    path.write_bytes(b"\n\n")
    with pytest.raises(DataError, match="empty"):
        read_conllu(path)


def test_sentence_from_tokens(tmp_path):
    sentence = sentence_from_tokens("Hello , world !".split())
    assert [(t.id, t.form, t.upos, t.misc) for t in sentence.words] == [
        ("1", "Hello", "_", "_"),
        ("2", ",", "_", "_"),
        ("3", "world", "_", "_"),
        ("4", "!", "_", "_"),
    ]
    assert sentence.comments == [] and sentence.line is None
    path = tmp_path / "built.conllu"
    write_conllu([sentence], path, upos=[["INTJ", "PUNCT", "NOUN", "PUNCT"]])
    assert path.read_text(encoding="utf-8").split("\n")[0] == "1\tHello\t_\tINTJ\t_\t_\t_\t_\t_\t_"
    words, tags = ["Hello", ",", "world", "!"], ["INTJ", "PUNCT", "NOUN", "PUNCT"]
    assert read_conllu(path) == [
        Sentence(
            lines=[
                Token(str(i), w, "_", tag, *["_"] * 6) for i, (w, tag) in enumerate(zip(words, tags, strict=True), 1)
            ]
        )
    ]
    with pytest.raises(ValueError, match="at least one word"):
        sentence_from_tokens([])
    with pytest.raises(ValueError, match="tabs"):
        sentence_from_tokens(["a\tb"])


def test_conllu_package_reads_our_output_with_replaced_upos(tiny, tmp_path):
    conllu = pytest.importorskip("conllu")
    sentences = read_conllu(tiny)
    upos = [["X"] * 10, ["INTJ", "NOUN"]]
    out = tmp_path / "tagged.conllu"
    write_conllu(sentences, out, upos=upos)
    parsed = conllu.parse(out.read_text(encoding="utf-8"))
    assert len(parsed) == 2
    assert [[t["upos"] for t in s if isinstance(t["id"], int)] for s in parsed] == upos
    assert parsed[0].metadata["sent_id"] == "s1"
    assert [t["form"] for t in parsed[0] if not isinstance(t["id"], int)] == ["can't", "come"]


@pytest.mark.skipif(not EWT_DEV.is_file(), reason=f"{EWT_DEV} not present")
def test_real_ud_english_ewt_dev_round_trips(tmp_path):
    sentences = read_conllu(EWT_DEV)
    assert len(sentences) == 2001
    assert sum(len(s.words) for s in sentences) == 25147
    assert sum(t.is_multiword for s in sentences for t in s.lines) == 359
    assert sum(t.is_empty_node for s in sentences for t in s.lines) == 4
    assert sentences[0].comments[1].startswith("# sent_id = ")
    out = tmp_path / "dev.conllu"
    write_conllu(sentences, out)
    assert out.read_bytes() == EWT_DEV.read_bytes()
