"""Downloads against a local HTTP server (127.0.0.1 only, never the network): RemoteFile on its own,
then every named dataset of the catalogue fetched through $SEQTASKS_MIRROR into a fresh data root."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import matplotlib
import pytest
from conftest import FP32, SHARED_DATA, TINY_LM, seqtasks, train
from omegaconf import OmegaConf

from seqtasks.configuration.registry import DATASETS
from seqtasks.data.catalogue import CATALOGUE, FILES, catalogue_lines
from seqtasks.data.files import RemoteFile, default_root, mirrored, sha256_of
from seqtasks.errors import DataError
from seqtasks.list import main as list_main

# A fresh $HOME would make every `python -m seqtasks` rebuild matplotlib's font cache (seconds).
MATPLOTLIB_CACHE = matplotlib.get_cachedir()

CONTENT = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50
CONTENT_SHA256 = hashlib.sha256(CONTENT).hexdigest()


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) serving the files under `directory` and recording
    every request path. A path in `cut_short` is announced with its whole Content-Length, but the
    connection closes after half of its bytes (a server that stops midway)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.requests: list[str] = []
        self.cut_short: set[str] = set()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.directory), **kwargs)

            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                if self.path not in server.cut_short:
                    return super().do_GET()
                body = (server.directory / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])  # HTTP/1.0: the connection closes after this

            def log_message(self, format, *args):  # keep test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def _serve(monkeypatch, directory: Path) -> Iterator[_Server]:
    """A running _Server on `directory`, with urllib kept off any proxy; stopped at the end."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    running = _Server(directory)
    running.thread.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def server(monkeypatch, tmp_path_factory):
    """Serves CONTENT as /input.txt; no mirror, so URLs are fetched as they are."""
    monkeypatch.delenv("SEQTASKS_MIRROR", raising=False)
    served = tmp_path_factory.mktemp("served")
    (served / "input.txt").write_bytes(CONTENT)
    with _serve(monkeypatch, served) as running:
        yield running


def _files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file()) if directory.exists() else []


# --- RemoteFile --------------------------------------------------------------------------------------
def test_missing_file_without_download_names_path_and_download_option(tmp_path, server):
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/input.txt"), sha256=CONTENT_SHA256)
    with pytest.raises(DataError) as caught:
        remote.locate(tmp_path, download=False)
    message = str(caught.value)
    expected = tmp_path / "shakespeare" / "input.txt"
    assert caught.value.path == expected
    assert str(expected) in message
    assert "data.download=false" in message
    assert server.url("/input.txt") in message
    assert server.requests == []
    assert not expected.exists()


def test_missing_file_without_url_says_to_copy_it(tmp_path):
    remote = RemoteFile("private/corpus.txt")
    with pytest.raises(DataError, match="no download URL") as caught:
        remote.locate(tmp_path, download=True)
    assert str(tmp_path / "private" / "corpus.txt") in str(caught.value)


def test_download_with_right_checksum_then_reuse(tmp_path, server, capsys):
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/input.txt"), sha256=CONTENT_SHA256)
    path = remote.locate(tmp_path, download=True)
    assert path == tmp_path / "shakespeare" / "input.txt"
    assert path.read_bytes() == CONTENT
    assert server.requests == ["/input.txt"]
    assert _files(tmp_path) == [path]  # no *.part files
    progress = capsys.readouterr().err
    assert "input.txt" in progress and "100%" in progress  # the progress bar, on stderr

    # Present now: neither locate variant touches the server again.
    assert remote.locate(tmp_path, download=True) == path
    assert remote.locate(tmp_path, download=False) == path
    assert server.requests == ["/input.txt"]


def test_existing_file_is_used_without_download(tmp_path, server):
    path = tmp_path / "shakespeare" / "input.txt"
    path.parent.mkdir()
    path.write_bytes(b"my own copy\n")
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/input.txt"), sha256=CONTENT_SHA256)
    assert remote.locate(tmp_path, download=True) == path
    assert path.read_bytes() == b"my own copy\n"
    assert server.requests == []


def test_wrong_checksum_leaves_nothing_behind(tmp_path, server):
    wrong = hashlib.sha256(b"something else").hexdigest()
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/input.txt"), sha256=wrong)
    with pytest.raises(DataError, match="sha256") as caught:
        remote.locate(tmp_path, download=True)
    message = str(caught.value)
    assert wrong in message and CONTENT_SHA256 in message
    target = tmp_path / "shakespeare" / "input.txt"
    assert str(target) in message and server.url("/input.txt") in message
    assert server.requests == ["/input.txt"]
    assert _files(tmp_path) == []


def test_server_that_stops_midway_fails_naming_the_url_and_leaves_nothing(tmp_path, server):
    server.cut_short.add("/input.txt")
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/input.txt"), sha256=CONTENT_SHA256)
    with pytest.raises(DataError) as caught:
        remote.locate(tmp_path, download=True)
    message = str(caught.value)
    assert message == (
        f"{tmp_path / 'shakespeare' / 'input.txt'}: download from {server.url('/input.txt')} failed: "
        f"connection closed after {len(CONTENT) // 2} of {len(CONTENT)} bytes"
    )
    assert _files(tmp_path) == []


def test_http_404_is_a_data_error_and_leaves_nothing_behind(tmp_path, server):
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/missing.txt"), sha256=CONTENT_SHA256)
    with pytest.raises(DataError, match="404") as caught:
        remote.locate(tmp_path, download=True)
    target = tmp_path / "shakespeare" / "input.txt"
    assert str(target) in str(caught.value)
    assert server.url("/missing.txt") in str(caught.value)
    assert server.requests == ["/missing.txt"]
    assert _files(tmp_path) == []


def test_connection_refused_is_a_data_error_naming_the_url(tmp_path, server):
    server.stop()  # a port on 127.0.0.1 that was just free: nothing listens there any more
    remote = RemoteFile("x/input.txt", url=server.url("/input.txt"), sha256=CONTENT_SHA256)
    with pytest.raises(DataError, match=rf"download from {re.escape(server.url('/input.txt'))} failed: .*refused"):
        remote.download(tmp_path / "x" / "input.txt", timeout=5)
    assert _files(tmp_path) == []


def test_mirror_keeps_the_host_and_path(monkeypatch):
    url = "https://raw.githubusercontent.com/owner/repo/0123abcd/data/input.txt"
    monkeypatch.delenv("SEQTASKS_MIRROR", raising=False)
    assert mirrored(url) == url
    monkeypatch.setenv("SEQTASKS_MIRROR", "http://mirror.lan/seqtasks/")
    assert mirrored(url) == "http://mirror.lan/seqtasks/raw.githubusercontent.com/owner/repo/0123abcd/data/input.txt"


def test_a_file_url_mirror_serves_a_local_copy(monkeypatch, tmp_path):
    url = "https://raw.githubusercontent.com/owner/repo/0123abcd/data/input.txt"
    copy = tmp_path / "mirror" / "raw.githubusercontent.com" / "owner" / "repo" / "0123abcd" / "data" / "input.txt"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(CONTENT)
    monkeypatch.setenv("SEQTASKS_MIRROR", (tmp_path / "mirror").as_uri())
    path = RemoteFile("shakespeare/input.txt", url=url, sha256=CONTENT_SHA256).locate(tmp_path / "root")
    assert path.read_bytes() == CONTENT


def test_default_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQTASKS_DATA", str(tmp_path / "datasets"))
    assert default_root() == tmp_path / "datasets"


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_default_root_falls_back_to_home_cache(monkeypatch, tmp_path, value):
    if value is None:
        monkeypatch.delenv("SEQTASKS_DATA", raising=False)
    else:
        monkeypatch.setenv("SEQTASKS_DATA", value)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_root() == tmp_path / ".cache" / "seqtasks"


def test_locate_without_root_uses_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQTASKS_DATA", str(tmp_path))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x\n")
    assert RemoteFile("d/f.txt").locate(None) == tmp_path / "d" / "f.txt"


def test_locate_expands_user_in_root(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "data" / "d").mkdir(parents=True)
    (tmp_path / "data" / "d" / "f.txt").write_text("x\n")
    assert RemoteFile("d/f.txt").locate("~/data") == tmp_path / "data" / "d" / "f.txt"


# --- the named datasets, through a mirror ------------------------------------------------------------
def _mirror_path(file: RemoteFile) -> str:
    """Where the mirror keeps a catalogue file: /<host>/<path> of its upstream URL."""
    url = urlsplit(file.url)
    return f"/{url.netloc}{url.path}"


@pytest.fixture
def mirror(monkeypatch, tmp_path_factory):
    """The catalogue's files (symlinks to the shared copies, byte-identical to upstream) served on
    127.0.0.1 as $SEQTASKS_MIRROR; $SEQTASKS_DATA unset and a fresh $HOME, so the data root is the
    default one, empty: <tmp>/home/.cache/seqtasks."""
    directory = tmp_path_factory.mktemp("mirror")
    for relative_path, file in FILES.items():
        link = directory / _mirror_path(file).lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(SHARED_DATA / relative_path)
    monkeypatch.delenv("SEQTASKS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    with _serve(monkeypatch, directory) as running:
        monkeypatch.setenv("SEQTASKS_MIRROR", running.url(""))
        yield running


@pytest.fixture
def root(mirror) -> Path:
    """The fresh default data root the mirror's tests download into."""
    return Path(os.environ["HOME"]) / ".cache" / "seqtasks"


def _data(compose_config, option: str, *overrides: str):
    """The datamodule of conf/data/<option>.yaml, as `python -m seqtasks data=<option>` builds it."""
    cfg = compose_config([f"data={option}", *overrides])
    return DATASETS.build(OmegaConf.to_container(cfg.data, resolve=True), "data")


def test_catalogue_urls_are_pinned_and_checksums_match_the_shared_copies():
    for relative_path, file in FILES.items():
        assert re.fullmatch(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/.+", file.url), file.url
        assert sha256_of(SHARED_DATA / relative_path) == file.sha256, relative_path
    assert {dataset.name for dataset in CATALOGUE} == {"tinyshakespeare", "multi30k", "ud_ewt", "sst2", "names"}


@pytest.mark.parametrize("dataset", CATALOGUE, ids=lambda dataset: dataset.name)
def test_every_named_dataset_downloads_into_a_fresh_default_root(mirror, root, compose_config, dataset):
    # What the dataset's config reads is fetched on first use, checked and read ...
    _data(compose_config, dataset.name).read_all()
    # ... and each of its catalogue files is there (or fetched now), byte-identical to upstream.
    for file in dataset.files:
        assert sha256_of(file.locate(None)) == file.sha256
    assert _files(root) == sorted(root / file.relative_path for file in dataset.files)
    assert sorted(mirror.requests) == sorted(_mirror_path(file) for file in dataset.files)  # each once


def test_downloads_go_to_seqtasks_data_when_set(mirror, root, compose_config, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQTASKS_DATA", str(tmp_path / "datasets"))
    _data(compose_config, "tinyshakespeare").read_all()
    assert _files(tmp_path / "datasets") == [tmp_path / "datasets" / "tinyshakespeare" / "input.txt"]
    assert _files(root) == []


def test_a_corrupted_copy_leaves_no_file(mirror, root, compose_config):
    file = FILES["tinyshakespeare/input.txt"]
    served = mirror.directory / _mirror_path(file).lstrip("/")
    served.unlink()
    served.write_bytes((SHARED_DATA / file.relative_path).read_bytes().replace(b"Citizen", b"Citizne", 1))
    with pytest.raises(DataError, match=f"download from {re.escape(mirror.url(_mirror_path(file)))} has sha256 "):
        _data(compose_config, "tinyshakespeare").read_all()
    assert _files(root) == []


def test_a_folder_cut_short_midway_leaves_nothing(mirror, root, compose_config):
    # names' 18 files arrive together or not at all: the 12th stops midway.
    twelfth = FILES["names/by_language/Korean.txt"]
    mirror.cut_short.add(_mirror_path(twelfth))
    with pytest.raises(DataError) as caught:
        _data(compose_config, "names").read_all()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{root / 'names' / 'by_language' / 'Korean.txt'}: download from ")
    assert f"{mirror.url(_mirror_path(twelfth))} failed: connection closed after" in message
    assert len(mirror.requests) == 12
    assert _files(root) == [] and not (root / "names" / "by_language").exists()


def test_connection_refused_names_the_url(mirror, root, compose_config):
    mirror.stop()
    url = mirror.url(_mirror_path(FILES["ud_english_ewt/en_ewt-ud-train.conllu"]))
    with pytest.raises(DataError, match=rf"download from {re.escape(url)} failed: .*refused"):
        _data(compose_config, "ud_ewt").read_all()
    assert _files(root) == []


def test_download_false_names_the_missing_path(mirror, root, compose_config):
    with pytest.raises(DataError) as caught:
        _data(compose_config, "sst2", "data.download=false").read_all()
    expected = root / "sst2" / "train.tsv"
    assert caught.value.path == expected
    assert str(expected) in str(caught.value) and "data.download=false" in str(caught.value)
    with pytest.raises(DataError, match=r"names/by_language: dataset folder not found .*data\.download=false"):
        _data(compose_config, "names", "data.download=false").read_all()
    assert mirror.requests == []


def test_list_datasets_prints_licence_source_and_citation(capsys):
    list_main(["datasets"])
    printed = capsys.readouterr().out
    assert printed.splitlines() == list(catalogue_lines())
    for dataset in CATALOGUE:
        assert f"  {dataset.name} " in printed
        for text in (dataset.licence, dataset.citation, *map(str, dataset.sources)):
            assert text in printed
    assert "CC BY-SA 4.0" in printed  # UD English EWT's licence


# A tiny training run per dataset where one takes seconds (the language model's: ~7 s on a busy 2-core
# machine; names' took twice that): the others are downloaded and read above, and multi30k is trained
# by `python -m seqtasks` below.
@pytest.mark.slow
def test_a_tiny_language_model_run_downloads_tinyshakespeare_and_trains(mirror, root, tmp_path):
    train(*TINY_LM, "samples.every_n_steps=0", "logger=[]", run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert _files(root) == [root / "tinyshakespeare" / "input.txt"]
    assert sha256_of(root / "tinyshakespeare" / "input.txt") == FILES["tinyshakespeare/input.txt"].sha256


TINY_TRANSLATION = [
    "task=translation",
    "tokenizer=char",
    "task.embedding_dim=16",
    "encoder.hidden_size=16",
    "encoder.num_layers=1",
    "head.embedding_dim=16",
    "head.rnn.hidden_size=16",
    "head.rnn.num_layers=1",
    "data.max_tokens=400",
    "data.max_length=20",
    "decoding=greedy",
    "trainer.max_steps=5",
    "trainer.max_epochs=1",
    "trainer.max_time=null",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "attention_images.sentences=0",
    "logger=[]",
    FP32,
]


@pytest.mark.slow
def test_translation_downloads_multi30k_checks_it_and_trains(mirror, root, tmp_path):
    run = seqtasks(*TINY_TRANSLATION, f"hydra.run.dir={tmp_path / 'run'}", env={"MPLCONFIGDIR": MATPLOTLIB_CACHE})
    fetched = {f"multi30k/{split}.{lang}.gz" for split in ("train", "val", "test_2016_flickr") for lang in ("de", "en")}
    assert {path.relative_to(root).as_posix() for path in _files(root)} == fetched
    assert all(sha256_of(root / path) == FILES[path].sha256 for path in fetched)
    assert f"downloading {mirror.url(_mirror_path(FILES['multi30k/train.de.gz']))}" in run.stderr
    assert "train.de.gz: 100%" in run.stderr  # the progress bar
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"val/bleu", "test/bleu"} <= set(metrics)


@pytest.mark.slow
def test_a_download_that_stops_midway_fails_the_command_in_one_line(mirror, root, tmp_path):
    file = FILES["tinyshakespeare/input.txt"]
    mirror.cut_short.add(_mirror_path(file))
    run = seqtasks(*TINY_LM, f"hydra.run.dir={tmp_path / 'run'}", env={"MPLCONFIGDIR": MATPLOTLIB_CACHE}, check=False)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line or "Traceback" in line]
    size = os.path.getsize(SHARED_DATA / file.relative_path)
    assert len(errors) == 1 and errors[0].endswith(
        f"{root / file.relative_path}: download from {mirror.url(_mirror_path(file))} failed: "
        f"connection closed after {size // 2} of {size} bytes"
    ), run.stderr
    assert _files(root) == []
