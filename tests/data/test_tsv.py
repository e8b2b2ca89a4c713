"""read_labelled_tsv (GLUE SST-2 TSV) and read_label_first_lines (`<label> <sentence>`): rows,
quotes kept as text, and errors that name the file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from seqtasks.data.tsv import read_label_first_lines, read_labelled_tsv
from seqtasks.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SST2_DEV = SHARED_DATA / "sst2" / "dev.tsv"
STSA_DEV = SHARED_DATA / "sst2" / "sentence_level" / "stsa.binary.dev"

GLUE = (
    "sentence\tlabel\n"
    "it 's a charming and often affecting journey . \t1\n"
    '"quoted" start and an unbalanced " quote \t0\n'
    "unflinchingly bleak and desperate \t0\n"
)


def _write(tmp_path: Path, content: str, name: str = "data.tsv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_reads_glue_rows_with_quotes_as_text(tmp_path):
    rows = read_labelled_tsv(_write(tmp_path, GLUE))
    assert rows == [
        ("it 's a charming and often affecting journey .", "1"),
        ('"quoted" start and an unbalanced " quote', "0"),
        ("unflinchingly bleak and desperate", "0"),
    ]


def test_columns_are_found_by_name_in_any_order(tmp_path):
    path = _write(tmp_path, "idx\tlabel\ttext\n0\tpos\tgood film\n\n1\tneg\tbad film\r\n")
    assert read_labelled_tsv(path, text_column="text") == [("good film", "pos"), ("bad film", "neg")]


def test_without_header_columns_are_positions(tmp_path):
    path = _write(tmp_path, "good film\t1\nbad film\t0\n")
    assert read_labelled_tsv(path, text_column=0, label_column=1, header=False) == [
        ("good film", "1"),
        ("bad film", "0"),
    ]
    with pytest.raises(ValueError, match="0-based positions"):
        read_labelled_tsv(path, header=False)


def test_reads_gzip(tmp_path):
    path = tmp_path / "dev.tsv.gz"
    path.write_bytes(gzip.compress(GLUE.encode("utf-8")))
    assert len(read_labelled_tsv(path)) == 3


def test_missing_column_names_the_columns_found(tmp_path):
    path = _write(tmp_path, "text\tlabel\ngood\t1\n")
    with pytest.raises(DataError) as caught:
        read_labelled_tsv(path)
    assert str(caught.value) == f"{path}:1: header has no column 'sentence'; found columns 'text', 'label'"


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (GLUE + "no label here\n", 5, "row has no label (expected 2 tab-separated fields, found 1)"),
        (GLUE + "empty label \t \n", 5, "row has no label (the label field is empty)"),
        ("sentence\tlabel\ngood\t1\n\nfine\t1\textra\n", 4, "expected 2 tab-separated fields, found 3"),
        ("sentence\tlabel\n \t1\n", 2, "row has no text (the text field is empty)"),
        ("sentence\tlabel\n\n", None, "no data rows after the header"),
    ],
    ids=["no-tab", "empty-label", "extra-field", "empty-text", "header-only"],
)
def test_malformed_rows_are_errors_with_their_line_number(tmp_path, content, line, message):
    path = _write(tmp_path, content)
    with pytest.raises(DataError) as caught:
        read_labelled_tsv(path)
    where = f"{path}:{line}" if line else f"{path}"
    assert str(caught.value) == f"{where}: {message}"
    assert caught.value.line == line


def test_label_first_lines(tmp_path):
    path = _write(tmp_path, '1 a gorgeous , witty film .\n\n0 "dull" and  slow \r\n', name="stsa.binary.dev")
    assert read_label_first_lines(path) == [("a gorgeous , witty film .", "1"), ('"dull" and  slow', "0")]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("1 fine\n0\n", 2, "expected '<label> <sentence>', found no space after the label"),
        ("1 fine\n\n no label\n", 3, "label is empty (the line starts with a space); expected '<label> <sentence>'"),
        ("1\tfine film\n", 1, "label '1\\tfine' contains whitespace; expected '<label> <sentence>'"),
        ("1 fine\n0   \n", 2, "line has a label ('0') but no sentence"),
    ],
    ids=["no-space", "empty-label", "tab", "no-sentence"],
)
def test_malformed_label_first_lines_are_errors(tmp_path, content, line, message):
    path = _write(tmp_path, content, name="bad.txt")
    with pytest.raises(DataError) as caught:
        read_label_first_lines(path)
    assert str(caught.value) == f"{path}:{line}: {message}"


@pytest.mark.skipif(not SST2_DEV.is_file(), reason=f"{SST2_DEV} not present")
def test_real_glue_sst2_dev():
    rows = read_labelled_tsv(SST2_DEV)
    assert len(rows) == 872
    assert {label for _, label in rows} == {"0", "1"}
    assert sum(label == "1" for _, label in rows) == 444
    assert rows[0] == ("it 's a charming and often affecting journey .", "1")


@pytest.mark.skipif(not STSA_DEV.is_file(), reason=f"{STSA_DEV} not present")
def test_real_sentence_level_sst2_dev():
    rows = read_label_first_lines(STSA_DEV)
    assert len(rows) == 872
    assert {label for _, label in rows} == {"0", "1"}
    assert sum(label == "1" for _, label in rows) == 444
    assert rows[0] == ("one long string of cliches .", "0")
