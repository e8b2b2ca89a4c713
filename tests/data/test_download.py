"""RemoteFile.locate / download against a local HTTP server (127.0.0.1 only, never the network)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from seqtasks.data.files import RemoteFile, default_root
from seqtasks.errors import DataError

CONTENT = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50
CONTENT_SHA256 = hashlib.sha256(CONTENT).hexdigest()


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 that serves `files` and records every request path."""

    def __init__(self):
        self.files: dict[str, bytes] = {"/input.txt": CONTENT}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "not here")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):  # keep test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server(monkeypatch):
    # Make sure urllib never routes the local request through a proxy.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    running = _Server()
    running.thread.start()
    try:
        yield running
    finally:
        running.httpd.shutdown()
        running.httpd.server_close()
        running.thread.join(timeout=5)


def _leftovers(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*")) if directory.exists() else []


def test_missing_file_without_download_names_path_and_download_option(tmp_path, server):
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/input.txt"), sha256=CONTENT_SHA256)
    with pytest.raises(DataError) as caught:
        remote.locate(tmp_path, download=False)
    message = str(caught.value)
    expected = tmp_path / "shakespeare" / "input.txt"
    assert caught.value.path == expected
    assert str(expected) in message
    assert "data.download" in message
    assert server.url("/input.txt") in message
    assert server.requests == []
    assert not expected.exists()


def test_missing_file_without_url_says_to_copy_it(tmp_path):
    remote = RemoteFile("private/corpus.txt")
    with pytest.raises(DataError, match="no download URL") as caught:
        remote.locate(tmp_path, download=True)
    assert str(tmp_path / "private" / "corpus.txt") in str(caught.value)


def test_download_with_right_checksum_then_reuse(tmp_path, server):
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/input.txt"), sha256=CONTENT_SHA256)
    path = remote.locate(tmp_path, download=True)
    assert path == tmp_path / "shakespeare" / "input.txt"
    assert path.read_bytes() == CONTENT
    assert server.requests == ["/input.txt"]
    assert _leftovers(tmp_path / "shakespeare") == [path]  # no *.part files

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
    assert str(target) in message
    assert server.requests == ["/input.txt"]
    assert not target.exists()
    assert list((tmp_path / "shakespeare").glob("*.part")) == []
    assert _leftovers(tmp_path / "shakespeare") == []


def test_http_404_is_a_data_error_and_leaves_nothing_behind(tmp_path, server):
    remote = RemoteFile("shakespeare/input.txt", url=server.url("/missing.txt"), sha256=CONTENT_SHA256)
    with pytest.raises(DataError, match="404") as caught:
        remote.locate(tmp_path, download=True)
    target = tmp_path / "shakespeare" / "input.txt"
    assert str(target) in str(caught.value)
    assert server.url("/missing.txt") in str(caught.value)
    assert server.requests == ["/missing.txt"]
    assert not target.exists()
    assert _leftovers(tmp_path / "shakespeare") == []


def test_connection_refused_is_a_data_error(tmp_path, server):
    # A port on 127.0.0.1 that was just free: nothing listens there any more.
    server.httpd.shutdown()
    server.httpd.server_close()
    remote = RemoteFile("x/input.txt", url=server.url("/input.txt"), sha256=CONTENT_SHA256)
    with pytest.raises(DataError, match="failed"):
        remote.download(tmp_path / "x" / "input.txt", timeout=5)
    assert _leftovers(tmp_path / "x") == []


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
