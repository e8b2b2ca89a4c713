"""read_text: empty, non-UTF-8, missing and gzip files, with errors that name the file."""

from __future__ import annotations

import gzip

import pytest

from seqtasks.data.text import read_text
from seqtasks.errors import DataError


def test_reads_utf8_text(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("héllo\nwörld\n", encoding="utf-8")
    assert read_text(path) == "héllo\nwörld\n"


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  \n"], ids=["empty", "whitespace"])
def test_empty_file_is_an_error_naming_the_file(tmp_path, content):
    path = tmp_path / "blank.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match="empty") as caught:
        read_text(path)
    assert str(path) in str(caught.value)
    assert caught.value.path == path


def test_invalid_utf8_names_file_line_and_byte_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"hello\nwor\xffld\n")
    with pytest.raises(DataError) as caught:
        read_text(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: ")
    assert "byte offset 9" in message
    assert "0xff" in message
    assert caught.value.line == 2


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(DataError, match="not found") as caught:
        read_text(path)
    assert str(path) in str(caught.value)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path}: is a directory; expected a file"):
        read_text(tmp_path)


def test_gzip_is_read_transparently(tmp_path):
    text = "to be, or not to be\nthat is the question ✓\n"
    path = tmp_path / "corpus.txt.gz"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    assert read_text(path) == text
    assert read_text(str(path)) == text


def test_gzip_of_empty_text_is_empty(tmp_path):
    path = tmp_path / "empty.txt.gz"
    path.write_bytes(gzip.compress(b"\n\n"))
    with pytest.raises(DataError, match="empty") as caught:
        read_text(path)
    assert str(path) in str(caught.value)


def _corrupt_gzips():
    good = gzip.compress(b"hello world\n" * 20)
    return {
        "not-gzip": b"this is plain text, not gzip\n",
        "truncated": good[: len(good) // 2],
        "bad-deflate-body": good[:10] + b"\x00\xff" * 20 + good[-8:],
        "bad-crc": good[:-8] + b"\x00\x00\x00\x00" + good[-4:],
    }


@pytest.mark.parametrize("name", sorted(_corrupt_gzips()))
def test_corrupt_gzip_is_a_data_error(tmp_path, name):
    path = tmp_path / "corrupt.txt.gz"
    path.write_bytes(_corrupt_gzips()[name])
    with pytest.raises(DataError, match="gzip") as caught:
        read_text(path)
    assert str(path) in str(caught.value)
