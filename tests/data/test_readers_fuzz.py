"""Hostile input: every reader gets random and malformed bytes (1,000 cases each, made by
hypothesis from the pieces its format is built of, plus raw bytes). Each case parses, or raises
the project's DataError naming the file (and, for a bad line, a line the file has); nothing hangs
and nothing raises another exception."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqtasks.data.classification import read_labelled_file
from seqtasks.data.conllu import read_conllu
from seqtasks.data.names import read_names_by_language
from seqtasks.data.parallel import read_parallel, read_parallel_tsv
from seqtasks.data.text import read_lines, read_text
from seqtasks.data.tsv import read_label_first_lines, read_labelled_tsv
from seqtasks.errors import DataError

EXAMPLES = 1000
PIECES = [
    b"\t",
    b"\n",
    b"\r\n",
    b"\r",
    b" ",
    b"  ",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xc3\xa9",
    b"\x00",
    b"#",
    b"# sent_id = 1",
    b"-",
    b".",
    b"_",
    b"0",
    b"1",
    b"2",
    b"3-4",
    b"8.1",
    b"10",
    b"a",
    b"Hund",
    b"sentence",
    b"label",
    b"NOUN",
    b"\xe2\x80\xa8",
    b"\x0c",
    b"name",
    b"language",
]
CONTENT = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join),  # the format's own pieces, shuffled
    st.binary(max_size=200),  # anything at all
)


def names_reader(path: Path):
    return read_names_by_language(path.parent)


def parallel_reader(path: Path):
    return read_parallel(path, path.with_name("target.txt"))


def sst2_tsv_reader(path: Path):
    return read_labelled_file(path, "sentence", "label")


# name -> (reader, file name)
READERS: dict[str, tuple[Callable, str]] = {
    "text lines": (read_lines, "in.txt"),
    "text stream": (read_text, "in.txt"),
    "glue tsv": (read_labelled_tsv, "train.tsv"),
    "sst2 tsv": (sst2_tsv_reader, "dev.tsv"),
    "label first": (read_label_first_lines, "train.txt"),
    "parallel files": (parallel_reader, "source.txt"),
    "parallel tsv": (read_parallel_tsv, "pairs.tsv"),
    "conllu": (read_conllu, "in.conllu"),
    "names": (names_reader, "Russian.txt"),
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_a_reader_parses_or_names_the_file_and_line(name):
    read, file_name = READERS[name]
    directory = Path(tempfile.mkdtemp(prefix="fuzz-"))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(content=CONTENT, other=CONTENT)
    def check(content: bytes, other: bytes) -> None:
        path = directory / file_name
        path.write_bytes(content)
        (directory / "target.txt").write_bytes(other)  # the parallel reader's second file
        try:
            read(path)
        except DataError as error:
            where = str(error.path)
            assert where in (str(path), str(directory / "target.txt"), str(directory)), str(error)
            assert str(error).startswith(where), str(error)
            if error.line is not None:
                lines = max(content.count(b"\n"), other.count(b"\n")) + 1
                assert 1 <= error.line <= lines, str(error)

    check()
