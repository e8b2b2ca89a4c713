"""Where the commands write: an output that is (or resolves to) one of the command's inputs, or a
directory where a file is written, is refused in one line before any model is loaded or any file
is written (`seqtasks.runtime.paths.refuse_overwrite`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import command

from seqtasks.errors import SeqtasksError
from seqtasks.runtime.atomic import atomic_write

CHECKPOINT = b"a checkpoint: refused before it is read"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A checkpoint (never read: every refusal comes first), an exported model directory, an input
    text, a test TSV and a translation test pair, in tmp_path."""
    (tmp_path / "best.ckpt").write_bytes(CHECKPOINT)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(CHECKPOINT)
    (tmp_path / "model" / "config.yaml").write_text("task: language_model\n")
    (tmp_path / "h.txt").write_text("First Citizen:\n")
    (tmp_path / "t.tsv").write_text("sentence\tlabel\ngood\t1\n")
    (tmp_path / "news.de").write_text("ein haus\n")
    (tmp_path / "news.en").write_text("a house\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "h.txt")
    return tmp_path


def contents(directory: Path) -> dict[str, bytes | None]:
    """Every path under directory -> its bytes (None for a directory)."""
    return {str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes() for p in directory.rglob("*")}


def refused(module: str, files: Path, *arguments: str, expected: str) -> None:
    """The command fails with one line holding `expected` (paths written relative to files) and
    leaves every file as it was."""
    before = contents(files)
    result = command(module, *(a.replace("@", f"{files}/") for a in arguments), check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: {expected.replace('@', f'{files}/')}"]
    assert contents(files) == before


AGAIN = "another path"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["output=@best.ckpt"], f"output=@best.ckpt is the ckpt file (ckpt=@best.ckpt); give output {AGAIN}"),
        (
            ["input=@h.txt", "output=@link.txt"],
            f"output=@link.txt is the input file (input=@h.txt); give output {AGAIN}",
        ),
        (
            ["input=@h.txt", "attention=@h.txt"],
            f"attention=@h.txt is the input file (input=@h.txt); give attention {AGAIN}",
        ),
        (["attention_images=@best.ckpt"], "attention_images=@best.ckpt is a file; expected a directory"),
        (
            ["attention_images=@"],
            f"attention_images=@ holds the ckpt file (ckpt=@best.ckpt); give attention_images {AGAIN}",
        ),
        (["output=@"], "output=@ is a directory; expected a file to write"),
        (
            ["output=@o.txt", "attention=@o.txt"],
            f"attention=@o.txt is the output file (output=@o.txt); give attention {AGAIN}",
        ),
    ],
)
def test_predict_refuses_an_output_that_would_replace_an_input(files, arguments, expected):
    refused("seqtasks.predict", files, "ckpt=@best.ckpt", *arguments, expected=expected)


def test_predict_refuses_to_write_into_an_exported_model_directory(files):
    refused(
        "seqtasks.predict",
        files,
        "ckpt=@model",
        "output=@model/config.yaml",
        expected=f"output=@model/config.yaml is inside the ckpt directory (ckpt=@model); give output {AGAIN}",
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["test=@t.tsv", "output=@t.tsv"], f"output=@t.tsv is the test file (test=@t.tsv); give output {AGAIN}"),
        (["output=@best.ckpt"], f"output=@best.ckpt is the ckpt file (ckpt=@best.ckpt); give output {AGAIN}"),
        (
            ["test=[@news.de,@news.en]", "output=@news.en"],
            f"output=@news.en is the test file (test=@news.en); give output {AGAIN}",
        ),
        (["output=@model"], "output=@model is a directory; expected a file to write"),
    ],
)
def test_evaluate_refuses_an_output_that_would_replace_an_input(files, arguments, expected):
    refused("seqtasks.evaluate", files, "ckpt=@best.ckpt", *arguments, expected=expected)


def test_inspect_refuses_to_write_its_page_over_its_input(files):
    refused(
        "seqtasks.inspect",
        files,
        "ckpt=@best.ckpt",
        "input=@h.txt",
        "output=@h.txt",
        expected=f"output=@h.txt is the input file (input=@h.txt); give output {AGAIN}",
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["ckpt=@best.ckpt", "output=@"], f"output=@ holds the ckpt file (ckpt=@best.ckpt); give output {AGAIN}"),
        (["ckpt=@model", "output=@model"], f"output=@model is the ckpt directory (ckpt=@model); give output {AGAIN}"),
        (
            ["ckpt=@model", "output=@model/again"],
            f"output=@model/again is inside the ckpt directory (ckpt=@model); give output {AGAIN}",
        ),
        (["ckpt=@model", "output=@h.txt"], "output=@h.txt is a file; expected a directory"),
        (
            # Another model's files would stay beside the new one's (its tokenizers, its ONNX graphs).
            ["ckpt=@best.ckpt", "output=@model"],
            "output=@model is not empty (config.yaml, model.safetensors); export writes a whole model "
            "directory: give a new or empty one",
        ),
    ],
)
def test_export_refuses_a_directory_that_is_or_holds_its_checkpoint_or_anything(files, arguments, expected):
    refused("seqtasks.export", files, *arguments, expected=expected)


def test_evaluate_refuses_to_write_over_the_runs_own_test_data(tiny_classifier):
    """Without test=..., the test data is the run's (known once the checkpoint is read): the
    metrics must not replace it either."""
    refused(
        "seqtasks.evaluate",
        tiny_classifier,
        "ckpt=@run/checkpoints/best.ckpt",
        "output=@data/names/by_language/Russian.txt",
        expected="output=@data/names/by_language/Russian.txt is inside the test directory "
        f"(test=@data/names/by_language); give output {AGAIN}",
    )


def test_an_output_through_a_symlink_replaces_the_file_it_points_at_and_keeps_the_link(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "latest.txt").write_text("old\n")
    link = tmp_path / "latest.txt"
    link.symlink_to(tmp_path / "results" / "latest.txt")
    with atomic_write(link) as f:
        f.write(b"new\n")
    assert link.is_symlink() and (tmp_path / "results" / "latest.txt").read_text() == "new\n"


def test_an_output_that_is_a_terminal_is_written_to_not_replaced():
    # /dev/stdout, /dev/null, a terminal: a rename would put a regular file where the device was.
    reader, writer = os.openpty()
    terminal = Path(os.ttyname(writer))
    try:
        with atomic_write(terminal) as f:
            f.write(b"to the terminal\n")
        assert stat.S_ISCHR(terminal.stat().st_mode)
        assert b"to the terminal" in os.read(reader, 100)
    finally:
        os.close(reader)
        os.close(writer)


def test_an_output_that_cannot_be_written_fails_naming_it(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SeqtasksError, match=r"a_file/out.txt: cannot write there \("):
        with atomic_write(tmp_path / "a_file" / "out.txt") as f:
            f.write(b"never")


@pytest.mark.parametrize(
    ("module", "arguments", "expected"),
    [
        ("seqtasks.predict", ["device=tpu"], "device=tpu: choose cpu or cuda"),
        ("seqtasks.predict", ["input_format=conll"], "input_format='conll': expected one of 'auto', 'conllu', 'text'"),
        ("seqtasks.evaluate", ["device=gpu"], "device=gpu: choose cpu or cuda"),
        ("seqtasks.inspect", ["input=@h.txt", "top=0"], "top=0: expected an integer >= 1"),
        ("seqtasks.inspect", ["input=@h.txt", "length=-5"], "length=-5: expected an integer >= 1"),
        ("seqtasks.inspect", ["input=@h.txt", "pattern='(('"], "pattern='((': not a regular expression ("),
        ("seqtasks.inspect", ["input=@h.txt", "output=-"], "output=-: the page is a file; give output=<page.html>"),
    ],
)
def test_options_out_of_range_fail_before_the_model_is_loaded(files, module, arguments, expected):
    before = contents(files)
    result = command(
        module,
        "ckpt=@best.ckpt".replace("@", f"{files}/"),
        *(a.replace("@", f"{files}/") for a in arguments),
        check=False,
    )
    assert result.returncode == 2 and result.stderr.startswith(f"error: {expected}"), result.stderr
    assert contents(files) == before
