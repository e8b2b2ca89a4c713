"""A checkpoint or an exported model whose bytes changed after saving fails to load, in one line that
names the file (and, for a checkpoint's tensors, the tensor); it never loads as different weights.
An unchanged one loads exactly as saved, and files saved before digests existed still load."""

from __future__ import annotations

import logging
import random
import re
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_LM, TINY_TEXT, command, train

from seqtasks.errors import SeqtasksError
from seqtasks.runtime.checkpoint import AtomicCheckpointIO, load_checkpoint

TENSOR_RECORD = re.compile(r"[^/]+/data/\d+")  # torch.save's storages; data.pkl holds the rest
NAN = struct.pack("<f", float("nan"))


@pytest.fixture(scope="module")
def run_overrides(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("data")
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_text(TINY_TEXT)
    return [*TINY_LM, f"data.root={root}", "samples.every_n_steps=0", "logger=[]"]


@pytest.fixture(scope="module")
def ckpt(run_overrides, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    train(*run_overrides, run_dir=run)
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def exported(ckpt, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("exported") / "model"
    command("seqtasks.export", f"ckpt={ckpt}", f"output={directory}")
    return directory


def records(path: Path) -> dict[str, range]:
    """Where each zip entry's bytes lie in the file. torch.save stores them uncompressed, after a
    local header whose extra field (absent from the central directory) pads them to alignment."""
    raw = path.read_bytes()
    spans = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            name_length, extra_length = struct.unpack_from("<HH", raw, info.header_offset + 26)
            start = info.header_offset + 30 + name_length + extra_length
            spans[info.filename] = range(start, start + info.file_size)
    return spans


def offsets_in(spans: list[range], rng: random.Random, count: int) -> list[int]:
    """One offset in every span (so the smallest records are hit too), then `count` across all."""
    return [rng.choice(span) for span in spans] + rng.sample([offset for span in spans for offset in span], count)


def xor_byte(clean: bytes, offset: int, rng: random.Random) -> bytes:
    changed = bytearray(clean)
    changed[offset] ^= rng.randrange(1, 256)  # single-bit flips and whole-byte changes alike
    return bytes(changed)


def assert_one_line_naming(error: SeqtasksError, path: Path) -> None:
    message = str(error)
    assert message.startswith(f"{path}: ") and "\n" not in message, message


def assert_identical(loaded, expected, where: str = "checkpoint") -> None:
    """Same structure, types, values and tensor bytes (NaN-safe)."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(loaded, torch.Tensor) and (loaded.dtype, loaded.shape) == (expected.dtype, expected.shape)
        assert torch.equal(loaded.reshape(-1).view(torch.uint8), expected.reshape(-1).view(torch.uint8)), where
    elif isinstance(expected, dict):
        assert type(loaded) is dict and list(loaded) == list(expected), where
        for key, value in expected.items():
            assert_identical(loaded[key], value, f"{where}[{key!r}]")
    elif isinstance(expected, list | tuple):
        assert type(loaded) is type(expected) and len(loaded) == len(expected), where
        for i, (a, b) in enumerate(zip(loaded, expected, strict=True)):
            assert_identical(a, b, f"{where}[{i}]")
    else:
        assert (type(loaded), repr(loaded)) == (type(expected), repr(expected)), where


def assert_fails_naming_or_loads_the_same(target: Path, named: Path, expected: dict) -> None:
    """Loading target fails with one line that names the changed file and calls it corrupt (not, say,
    a pickle that would run code), or loads exactly what was saved."""
    try:
        loaded = load_checkpoint(target)
    except SeqtasksError as error:
        assert_one_line_naming(error, named)
        assert str(error).startswith(f"{named}: corrupt"), str(error)
    else:
        assert_identical(loaded, expected)


# --- .ckpt files ----------------------------------------------------------------------------------


def test_an_unchanged_checkpoint_loads_exactly_what_the_file_holds(ckpt):
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert raw.pop("digest")["algorithm"] == "sha256"
    assert_identical(load_checkpoint(ckpt), raw)


def test_any_changed_byte_of_tensor_data_fails_the_load_naming_the_file(ckpt, tmp_path):
    rng = random.Random(0)
    spans = [span for name, span in records(ckpt).items() if TENSOR_RECORD.fullmatch(name)]
    assert len(spans) > 20  # weights, optimizer moments, step counters, random states, carried state
    clean, bad = ckpt.read_bytes(), tmp_path / "bad.ckpt"
    for offset in offsets_in(spans, rng, 200):
        bad.write_bytes(xor_byte(clean, offset, rng))
        with pytest.raises(SeqtasksError, match="corrupt") as caught:
            load_checkpoint(bad)
        assert_one_line_naming(caught.value, bad)


def test_nan_written_over_a_weight_names_the_file_and_the_tensor(ckpt, tmp_path):
    clean, bad = ckpt.read_bytes(), tmp_path / "bad.ckpt"
    state_dict = load_checkpoint(ckpt)["state_dict"]
    for key, tensor in state_dict.items():
        at = clean.find(tensor.numpy().tobytes())
        assert at > 0 and clean.count(tensor.numpy().tobytes()) == 1, key
        bad.write_bytes(clean[:at] + NAN + clean[at + len(NAN) :])
        with pytest.raises(SeqtasksError, match=re.escape(f"['state_dict'][{key!r}]")) as caught:
            load_checkpoint(bad)
        assert_one_line_naming(caught.value, bad)


def test_a_changed_byte_of_the_pickle_fails_naming_the_file_or_changes_nothing(ckpt, tmp_path):
    rng = random.Random(1)
    expected = load_checkpoint(ckpt)
    clean, bad = ckpt.read_bytes(), tmp_path / "bad.ckpt"
    for offset in offsets_in([records(ckpt)["archive/data.pkl"]], rng, 100):
        bad.write_bytes(xor_byte(clean, offset, rng))
        assert_fails_naming_or_loads_the_same(bad, bad, expected)


def test_predict_with_a_corrupted_checkpoint_exits_2_with_one_error_line(ckpt, tmp_path):
    clean = ckpt.read_bytes()
    span = records(ckpt)["archive/data/0"]
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(clean[: span.start] + NAN + clean[span.start + len(NAN) :])
    result = command("seqtasks.predict", f"ckpt={bad}", "prime=First", "length=5", check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"error: {bad}: corrupt"), result.stderr
    assert result.stdout == ""


def test_resuming_from_a_corrupted_checkpoint_names_it_not_the_learning_rate(ckpt, run_overrides, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(ckpt.parent.parent, run)
    last = run / "checkpoints" / "last.ckpt"
    clean = last.read_bytes()
    span = records(last)["archive/data/0"]
    last.write_bytes(clean[: span.start] + NAN * 4 + clean[span.start + 4 * len(NAN) :])
    with pytest.raises(SeqtasksError, match="corrupt") as caught:
        train(*run_overrides, "resume=auto", run_dir=run)
    assert_one_line_naming(caught.value, last)


def test_a_checkpoint_saved_before_digests_loads_with_one_warning(ckpt, tmp_path, caplog):
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    raw.pop("digest")
    old = tmp_path / "old.ckpt"
    torch.save(raw, old)
    with caplog.at_level(logging.WARNING):
        assert_identical(load_checkpoint(old), raw)
        assert_identical(load_checkpoint(old), raw)
    warnings = [record.getMessage() for record in caplog.records if str(old) in record.getMessage()]
    assert len(warnings) == 1 and "digest" in warnings[0]


def test_a_changed_byte_in_the_digests_own_key_fails_naming_the_file(ckpt, tmp_path):
    # Renamed, the digest entry would look like a file saved before digests (which loads unchecked);
    # the pickle record's CRC tells them apart.
    clean, span = ckpt.read_bytes(), records(ckpt)["archive/data.pkl"]
    key = clean.rindex(b"digest", span.start, span.stop)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(clean[:key] + b"dqgest" + clean[key + len(b"digest") :])
    with pytest.raises(SeqtasksError) as caught:
        load_checkpoint(bad)
    assert_one_line_naming(caught.value, bad)
    assert "corrupt checkpoint: archive/data.pkl fails its CRC check" in str(caught.value)


def test_a_checkpoint_saved_again_gets_a_fresh_digest(ckpt, tmp_path):
    # A checkpoint edited and saved again, still holding a digest entry: that entry is replaced.
    again = tmp_path / "again.ckpt"
    checkpoint = load_checkpoint(ckpt)
    checkpoint["epoch"] += 1
    AtomicCheckpointIO().save_checkpoint({**checkpoint, "digest": {"algorithm": "sha256"}}, again)
    assert_identical(load_checkpoint(again), checkpoint)


# --- exported model directories -------------------------------------------------------------------


def test_an_unchanged_export_vouches_for_every_file_and_loads_the_checkpoints_weights(ckpt, exported):
    listed = yaml.safe_load((exported / "config.yaml").read_text(encoding="utf-8"))["digests"]["files"]
    files = {path.relative_to(exported).as_posix() for path in exported.rglob("*") if path.is_file()}
    assert set(listed) == files - {"config.yaml"}
    loaded, saved = load_checkpoint(exported)["state_dict"], load_checkpoint(ckpt)["state_dict"]
    assert_identical(dict(sorted(loaded.items())), dict(sorted(saved.items())))


def test_any_changed_byte_of_model_safetensors_fails_the_load_naming_it(exported, tmp_path):
    rng = random.Random(2)
    directory = tmp_path / "model"
    shutil.copytree(exported, directory)
    weights = directory / "model.safetensors"
    clean = weights.read_bytes()
    for offset in offsets_in([range(len(clean))], rng, 200):
        weights.write_bytes(xor_byte(clean, offset, rng))
        with pytest.raises(SeqtasksError, match="corrupt") as caught:
            load_checkpoint(directory)
        assert_one_line_naming(caught.value, weights)


def test_a_changed_byte_of_a_tokenizer_or_the_config_fails_naming_it_or_changes_nothing(exported, tmp_path):
    rng = random.Random(3)
    expected = load_checkpoint(exported)
    directory = tmp_path / "model"
    shutil.copytree(exported, directory)
    files = [directory / "config.yaml", *sorted((directory / "tokenizers").iterdir())]
    for path in files:
        clean = path.read_bytes()
        for offset in offsets_in([range(len(clean))], rng, 30):
            path.write_bytes(xor_byte(clean, offset, rng))
            assert_fails_naming_or_loads_the_same(directory, path, expected)
        path.write_bytes(clean)


def test_a_changed_byte_in_the_digests_own_key_fails_naming_the_config(exported, tmp_path):
    # Renamed, the digests entry would look like an export made before digests (which loads unchecked).
    directory = tmp_path / "model"
    shutil.copytree(exported, directory)
    config = directory / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert text.count("\ndigests:") == 1
    config.write_text(text.replace("\ndigests:", "\ndigqsts:"), encoding="utf-8")
    with pytest.raises(SeqtasksError) as caught:
        load_checkpoint(directory)
    assert_one_line_naming(caught.value, config)
    assert "corrupt: no digests entry, and entries no export writes: ['digqsts']" in str(caught.value)


def test_predict_with_a_corrupted_export_exits_2_with_one_error_line(exported, tmp_path):
    directory = tmp_path / "model"
    shutil.copytree(exported, directory)
    weights = directory / "model.safetensors"
    clean = weights.read_bytes()
    weights.write_bytes(clean[: -len(NAN)] + NAN)
    result = command("seqtasks.predict", f"ckpt={directory}", "prime=First", "length=5", check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"error: {weights}: corrupt"), result.stderr


def test_an_export_made_before_digests_loads_with_one_warning(exported, tmp_path, caplog):
    directory = tmp_path / "model"
    shutil.copytree(exported, directory)
    config = directory / "config.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text[: text.index("digests:")], encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert_identical(load_checkpoint(directory), load_checkpoint(exported))
        load_checkpoint(directory)
    warnings = [record.getMessage() for record in caplog.records if str(directory) in record.getMessage()]
    assert len(warnings) == 1 and "digest" in warnings[0]
