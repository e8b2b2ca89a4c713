"""Every file format reads its lines through one reader, so a byte-order mark, CRLF line ends, an
empty file and invalid UTF-8 mean the same in all of them: the same result, or the same error
naming the file (and the line and byte offset)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from seqtasks.data.conllu import read_conllu
from seqtasks.data.names import read_names_by_language
from seqtasks.data.parallel import read_parallel, read_parallel_tsv
from seqtasks.data.text import read_lines, read_text
from seqtasks.data.tsv import read_label_first_lines, read_labelled_tsv
from seqtasks.errors import DataError


def names_reader(path: Path):
    return read_names_by_language(path.parent)


def parallel_reader(path: Path):
    target = path.with_suffix(".target")
    target.write_text("one\ntwo\n" if path.read_bytes().strip() else "")
    return read_parallel(path, target)


# (reader, two lines of valid content, the file's name)
READERS: dict[str, tuple[Callable, str, str]] = {
    "text lines": (read_lines, "a b\nc d\n", "in.txt"),
    "text stream": (read_text, "a b\nc d\n", "in.txt"),
    "glue tsv": (read_labelled_tsv, "sentence\tlabel\ngood film\t1\n", "train.tsv"),
    "label first": (read_label_first_lines, "1 good film\n0 bad film\n", "train.txt"),
    "parallel files": (parallel_reader, "eins\nzwei\n", "train.source"),
    "parallel tsv": (read_parallel_tsv, "eins\tone\nzwei\ttwo\n", "pairs.tsv"),
    "conllu": (read_conllu, "1\tHi\t_\tINTJ\t_\t_\t0\troot\t_\t_\n\n", "in.conllu"),
    "names": (names_reader, "Ivanov\nPetrov\n", "Russian.txt"),
}


@pytest.fixture(params=sorted(READERS))
def reader(request, tmp_path):
    read, content, name = READERS[request.param]
    return read, content, tmp_path / name


def test_bom_and_crlf_read_like_plain_lf(reader):
    read, content, path = reader
    path.write_bytes(content.encode("utf-8"))
    plain = read(path)
    path.write_bytes(b"\xef\xbb\xbf" + content.replace("\n", "\r\n").encode("utf-8"))
    assert read(path) == plain


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"  \n\n", "file holds only blank lines")],
    ids=["empty", "whitespace"],
)
def test_an_empty_file_is_an_error_naming_it(reader, content, message):
    read, _, path = reader
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        read(path)
    assert str(path) in str(caught.value)


def test_invalid_utf8_names_the_file_line_and_byte_offset(reader):
    read, content, path = reader
    first, rest = content.split("\n", 1)
    raw = (first + "\n").encode("utf-8") + b"\xff" + rest.encode("utf-8")
    path.write_bytes(raw)
    offset = len((first + "\n").encode("utf-8"))
    with pytest.raises(DataError, match=rf"{path}:2: invalid UTF-8 at byte offset {offset} \(column 1\)"):
        read(path)
