"""`python -m seqtasks.serve`: a real server (a subprocess on a free port of 127.0.0.1) for a tiny
language model and a tiny translation model, each checked against `seqtasks.predict` on the same
checkpoint: the same inputs, options and seed give the same lines (batched, n-best, sampled,
streamed), and the structured fields are predict's (attention). Malformed requests, made by
hypothesis from the request schema, are answered 4xx with a reason, and the server serves on.

The fuzz runs SEQTASKS_SERVE_FUZZ_EXAMPLES requests (100 by default; the acceptance run uses 500):

    SEQTASKS_SERVE_FUZZ_EXAMPLES=500 python -m pytest tests/test_serve.py -k malformed
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("litserve", reason="the server needs LitServe: pip install -e '.[serve]'")
from conftest import TINY_LM, TINY_TEXT, command, train
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_predict_attention import TINY_TRANSLATION

from seqtasks import serve
from seqtasks.data.images import load_input
from seqtasks.serving.rules import ModelFacts, Rules, image_array
from seqtasks.serving.schema import FIELDS, ClientError, Limits, PredictRequest, parse_request

pytestmark = pytest.mark.slow  # trains two tiny models and starts their servers

REPO = Path(__file__).resolve().parents[1]

FUZZ_EXAMPLES = int(os.environ.get("SEQTASKS_SERVE_FUZZ_EXAMPLES", "100"))

# Lines of different lengths (so that a batch sorts them as predict's file does) and unseen letters.
LINES = ["a", "b a", "c a b", "d x b a", "e d c b a f"]
# The translation server: small limits to fuzz against, and a batch window wide enough to catch a burst.
TRANSLATION_SERVER = ["max_chars=200", "max_body_bytes=20000", f"max_batch_size={len(LINES)}", "batch_timeout=1.0"]
LANGUAGE_MODEL_SERVER = ["workers=2"]  # sampled requests, each alone: two inference processes take them


# --- models and servers, shared with tests/test_serve_browser.py -------------------------------------------
def scratch(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def checkpoint(kind: str) -> Path:
    """best.ckpt of a tiny run (once per session): 'language_model' or 'translation' (reversing
    letters; 20 steps teach it little, which does not matter: the server must say what predict says)."""
    root = scratch(f"serve-{kind}-")
    if kind == "language_model":
        (root / "tiny.txt").write_text(TINY_TEXT)
        train(*TINY_LM, "data=text_file", f"data.path={root / 'tiny.txt'}", "logger=[]", run_dir=root / "run")
    else:
        rng = random.Random(0)
        sentences = [" ".join(rng.choice("abcdef") for _ in range(rng.randint(2, 6))) for _ in range(300)]
        (root / "pairs.tsv").write_text("".join(f"{s}\t{s[::-1]}\n" for s in sentences))
        data = [f"data.{split}={root / 'pairs.tsv'}" for split in ("train", "val", "test")]
        train(*TINY_TRANSLATION, *data, run_dir=root / "run")
    return root / "run" / "checkpoints" / "best.ckpt"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`python -m seqtasks.serve` in a process group of its own, on 127.0.0.1, until stop()."""

    def __init__(self, ckpt: Path, *overrides: str, startup: float = 300.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="serve-", suffix=".log", delete=False)  # noqa: SIM115
        atexit.register(os.unlink, self.log.name)
        arguments = [f"ckpt={ckpt}", f"port={self.port}", "host=127.0.0.1", "log_level=warning", *overrides]
        # This checkout's seqtasks, whatever another one installed may say (its workers inherit it).
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seqtasks.serve", *arguments],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,  # its workers in its group: stop() ends them all, and nothing else
        )
        deadline = time.monotonic() + startup
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not come up:\n{self.output()[-3000:]}")
            time.sleep(0.5)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # LitServe shuts its workers down on Ctrl-C
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:  # a worker left behind by a hard stop
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def post(self, path: str, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
        """(status, the JSON answer, or the text of one that is not JSON)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def stream(self, body: dict) -> list[dict]:
        request = urllib.request.Request(
            f"{self.url}/stream", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return [json.loads(line) for line in response if line.strip()]

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()


@functools.cache
def server(kind: str) -> Server:
    """One server per model for the session (both test files); stopped when the tests end."""
    started = Server(checkpoint(kind), *(TRANSLATION_SERVER if kind == "translation" else LANGUAGE_MODEL_SERVER))
    atexit.register(started.stop)
    return started


def predict_line(ckpt: Path, line: str, *options: str) -> str:
    """What `seqtasks.predict` writes for a one-line input file, less the final line break."""
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "input.txt"
        source.write_text(line + "\n")
        return command("seqtasks.predict", f"ckpt={ckpt}", f"input={source}", *options).stdout.removesuffix("\n")


@pytest.fixture(scope="session")
def translation():
    yield server("translation")
    server("translation").stop()


@pytest.fixture(scope="session")
def language_model():
    yield server("language_model")
    server("language_model").stop()


# --- the language model --------------------------------------------------------------------------------
def test_language_model_samples_are_predicts(language_model):
    ckpt = checkpoint("language_model")
    for request, options in [
        ({"input": "First", "length": 40, "seed": 3}, ["length=40", "seed=3"]),
        ({"input": "All:", "length": 25, "num_samples": 3, "seed": 7}, ["length=25", "num_samples=3", "seed=7"]),
        (
            {"input": "Speak", "length": 30, "temperature": 0.5},
            ["length=30", "decoding=sampling", "decoding.temperature=0.5"],
        ),
    ]:
        status, answer = language_model.post("/predict", request)
        assert status == 200, answer
        assert answer["output"] == predict_line(ckpt, request["input"], *options)
        assert answer["samples"] == answer["output"].split("\n\n") and len(answer["samples"]) == request.get(
            "num_samples", 1
        )
    # Unseeded requests get predict's default seed, so they repeat, as predict does.
    first, again = (language_model.post("/predict", {"input": "You", "length": 20})[1] for _ in range(2))
    assert first["output"] == again["output"] == predict_line(ckpt, "You", "length=20")


def test_two_workers_answer_concurrent_samples_as_predict_does(language_model):
    info = json.loads(language_model.get("/info")[2])["model"]
    assert info["workers"] == 2 and info["max_batch_size"] == 1
    assert info["threads_per_worker"] == max(1, torch.get_num_threads() // 2)  # the machine's threads, shared
    ckpt = checkpoint("language_model")
    seeds = range(11, 17)
    with ThreadPoolExecutor(len(seeds)) as pool:
        answers = list(
            pool.map(lambda seed: language_model.post("/predict", {"input": "All", "length": 30, "seed": seed}), seeds)
        )
    assert all(status == 200 for status, _ in answers), answers
    assert [answer["output"] for _, answer in answers] == [
        predict_line(ckpt, "All", "length=30", f"seed={seed}") for seed in seeds
    ]


def test_language_model_streams_predicts_sample_token_by_token(language_model):
    ckpt = checkpoint("language_model")
    messages = language_model.stream({"input": "First", "length": 40, "seed": 3})
    *steps, last = messages
    assert len(steps) == 1 + 40 and steps[0] == {"texts": ["First"]}  # the prime, then one message per token
    streamed = "".join(message["texts"][0] for message in steps)
    assert last["done"] and streamed == last["output"] == predict_line(ckpt, "First", "length=40", "seed=3")
    # Several samples stream side by side; the last message ranks them as predict does.
    *steps, last = language_model.stream({"input": "All:", "length": 25, "num_samples": 3, "seed": 7})
    texts = ["".join(step["texts"][row] for step in steps) for row in range(3)]
    assert sorted(texts) == sorted(last["samples"])
    assert last["output"] == predict_line(ckpt, "All:", "length=25", "num_samples=3", "seed=7")


def test_language_model_refuses_fields_it_does_not_take_and_lengths_over_the_limit(language_model):
    status, answer = language_model.post("/stream", {"input": "x", "beam_size": 2})
    assert status == 422 and "beam_size" in answer["error"]  # the language model takes no beam_size at all
    status, answer = language_model.post("/predict", {"input": "x", "length": 10**6})
    assert status == 422 and "max_length" in answer["error"]


# --- translation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "decoding"),
    [({}, []), ({"temperature": 0}, ["decoding=sampling", "decoding.temperature=0"])],  # 0: draws nothing
)
def test_concurrent_translations_share_one_batch_and_are_predicts_lines(translation, tmp_path, fields, decoding):
    ckpt = checkpoint("translation")
    source = tmp_path / "input.txt"
    source.write_text("\n".join(LINES) + "\n")
    expected = command("seqtasks.predict", f"ckpt={ckpt}", f"input={source}", *decoding).stdout.split("\n")[:-1]
    # LitServe's batch window runs on its own clock, so a burst can straddle two windows: retry then.
    for _ in range(3):
        with ThreadPoolExecutor(len(LINES)) as pool:
            answers = list(pool.map(lambda line: translation.post("/predict", {"input": line, **fields}), LINES))
        assert all(status == 200 for status, _ in answers), answers
        if all(answer["batch_size"] == len(LINES) for _, answer in answers):
            break
    assert [answer["batch_size"] for _, answer in answers] == [len(LINES)] * len(LINES)
    assert [answer["output"] for _, answer in answers] == expected


def test_translation_n_best_and_attention_are_predicts(translation, tmp_path):
    ckpt = checkpoint("translation")
    line = "c a b"
    status, answer = translation.post("/predict", {"input": line, "beam_size": 3, "n_best": 2})
    assert status == 200, answer
    attention = tmp_path / "attention.jsonl"
    beam = ["decoding=beam", "decoding.beam_size=3", "decoding.n_best=2"]
    assert answer["output"] == predict_line(ckpt, line, *beam, f"attention={attention}")
    assert [f"0 ||| {h['text']} ||| {h['score']:.4f}" for h in answer["n_best"]] == answer["output"].split("\n")
    (written,) = [json.loads(row) for row in attention.read_text().splitlines()]
    assert answer["attention"]["source"] == written["source"] and answer["attention"]["target"] == written["target"]
    np.testing.assert_allclose(answer["attention"]["weights"], written["attention"], atol=1e-4)
    # Sampling from a seed, and the empty line, as predict.
    status, answer = translation.post("/predict", {"input": line, "temperature": 0.7, "seed": 5})
    assert answer["output"] == predict_line(ckpt, line, "decoding=sampling", "decoding.temperature=0.7", "seed=5")
    assert translation.post("/predict", {"input": ""})[1]["output"] == ""


def test_health_info_and_the_offline_page(translation):
    assert translation.get("/health")[0] == 200
    info = json.loads(translation.get("/info")[2])["model"]
    assert info["task"] == "translation" and info["fields"] == ["input", "beam_size", "n_best", "temperature", "seed"]
    run = checkpoint("translation").parent.parent
    recorded = json.loads((run / "metrics.json").read_text())
    assert info["metrics"] == {key: value for key, value in recorded.items() if key.startswith("test/")}
    assert info["attention"] and info["stream"] is None and info["limits"]["max_chars"] == 200
    status, headers, page = translation.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "http://" not in page and "https://" not in page and " src=" not in page  # nothing loaded from elsewhere


# --- client mistakes -----------------------------------------------------------------------------------
TRANSLATION_FIELDS = ("beam_size", "n_best", "temperature", "seed")
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10))
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
LINE = st.text(st.characters(exclude_characters="\n", codec="utf-8"), max_size=30)
GOOD_OPTIONS = st.fixed_dictionaries(
    {}, optional={"beam_size": st.integers(2, 4), "n_best": st.just(1), "seed": st.integers(0, 99)}
)
NOT_INT = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(JSON_SCALARS, max_size=2),
    st.dictionaries(st.text(max_size=3), JSON_SCALARS, max_size=2),
)
NOT_FLOAT = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    st.lists(JSON_SCALARS, max_size=2),
)
NOT_STRING = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(JSON_SCALARS, max_size=2),
    st.dictionaries(st.text(max_size=3), JSON_SCALARS, max_size=2),
)


def json_body(request: dict) -> bytes:
    return json.dumps(request, allow_nan=True).encode()  # NaN and Infinity as JavaScript writes them


def is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


@st.composite
def malformed(draw) -> tuple[str, bytes, str, str | None]:
    """(kind of mistake, body, content type, a word the error must say) for the translation server."""
    good = {"input": draw(LINE), **draw(GOOD_OPTIONS)}
    kind = draw(
        st.sampled_from(
            [
                "bytes",
                "not_object",
                "wrong_type",
                "out_of_range",
                "unknown_field",
                "other_task_field",
                "too_long",
                "line_break",
                "missing_input",
                "beam_and_temperature",
                "n_best_over_beam",
                "content_type",
            ]
        )
    )
    if kind == "bytes":
        body = draw(st.binary(max_size=200).filter(lambda b: not is_json_object(b)))
        return kind, body, "application/json", None
    if kind == "not_object":
        return kind, json_body(draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))), "application/json", None
    if kind == "wrong_type":
        field = draw(st.sampled_from(["input", *TRANSLATION_FIELDS]))
        wrong = NOT_STRING if field == "input" else NOT_FLOAT if field == "temperature" else NOT_INT
        return kind, json_body({**good, field: draw(wrong)}), "application/json", field
    if kind == "out_of_range":
        field, value = draw(
            st.one_of(
                st.tuples(
                    st.sampled_from(["beam_size", "n_best"]), st.integers(max_value=0) | st.integers(min_value=17)
                ),
                st.tuples(st.just("seed"), st.integers(max_value=-1) | st.integers(min_value=2**63)),
                st.tuples(st.just("temperature"), st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False)),
            )
        )
        request = {**good, field: value}
        if field == "temperature":
            request.pop("beam_size", None)
        return kind, json_body(request), "application/json", field
    if kind == "unknown_field":
        name = draw(st.text(min_size=1, max_size=12).filter(lambda n: n not in FIELDS))
        return kind, json_body({**good, name: draw(JSON_VALUES)}), "application/json", None
    if kind == "other_task_field":
        field = draw(st.sampled_from(["length", "num_samples", "image"]))
        value = "aGk=" if field == "image" else draw(st.integers(1, 10))
        return kind, json_body({**good, field: value}), "application/json", field
    if kind == "too_long":
        return kind, json_body({**good, "input": "a" * draw(st.integers(201, 2000))}), "application/json", "max_chars"
    if kind == "line_break":
        return kind, json_body({**good, "input": draw(LINE) + "\n" + draw(LINE)}), "application/json", "line break"
    if kind == "missing_input":
        request = {key: value for key, value in good.items() if key != "input"}
        if draw(st.booleans()):
            request["input"] = None
        return kind, json_body(request), "application/json", "input"
    if kind == "beam_and_temperature":
        request = {**good, "beam_size": draw(st.integers(1, 4)), "temperature": draw(st.floats(0, 2))}
        return kind, json_body(request), "application/json", "not both"
    if kind == "n_best_over_beam":
        beam = draw(st.integers(1, 8))
        request = {**good, "beam_size": beam, "n_best": draw(st.integers(beam + 1, 16))}
        return kind, json_body(request), "application/json", "beam_size"
    content_type = draw(
        st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
    )
    return kind, json_body(good), content_type, "Content-Type"


def test_malformed_requests_get_4xx_with_a_reason_and_the_server_serves_on(translation):
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(malformed())
    def answered(case):
        kind, body, content_type, word = case
        event(kind)
        status, answer = translation.post("/predict", body, content_type)
        assert 400 <= status < 500, (kind, body[:200], status, answer)
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str) and answer["error"], answer
        if word is not None:
            assert word in answer["error"], (kind, body[:200], answer)

    answered()
    status, answer = translation.post("/predict", b"x" * 30000)
    assert status == 413 and "max_body_bytes" in answer["error"]
    assert translation.post("/predictt", {"input": "a"}) == (404, {"error": "Not Found"})  # FastAPI's, said alike
    assert translation.process.poll() is None  # still serving, and right
    status, answer = translation.post("/predict", {"input": "c a b"})
    assert status == 200 and answer["output"] == predict_line(checkpoint("translation"), "c a b")


# --- the rules on their own (no server) ------------------------------------------------------------
def png(size: tuple[int, int], colour: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_uploaded_image_is_read_as_predict_reads_its_file(tmp_path):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    image.save(tmp_path / "x.png")
    upload = (tmp_path / "x.png").read_bytes()
    np.testing.assert_array_equal(image_array(upload, 32, 10**6), load_input(tmp_path / "x.png", 32, "list.txt", 1))


def captioning_rules(**limits: int) -> Rules:
    facts = ModelFacts(
        "captioning", "captioning", {"name": "beam", "beam_size": 5, "length_penalty": 1.0, "n_best": 1}, image_size=32
    )
    return Rules(facts, Limits(**limits))


@pytest.mark.parametrize(
    ("image", "word"),
    [
        ("not base64!", "base64"),
        (base64.b64encode(b"GIF89a not really").decode(), "cannot be read"),
        (base64.b64encode(png((64, 64))[:40]).decode(), "cannot be read"),  # cut short
        ("data:image/png;base64," + base64.b64encode(png((300, 300))).decode(), "max_image_pixels"),
        ("", "empty"),
    ],
)
def test_unreadable_images_are_client_errors(image, word):
    with pytest.raises(ClientError) as error:
        captioning_rules(max_image_pixels=200 * 200).job(PredictRequest(image=image))
    assert error.value.status == 422 and word in error.value.message
    job = captioning_rules().job(
        PredictRequest(image="data:image/png;base64," + base64.b64encode(png((8, 8))).decode())
    )
    assert job.image == png((8, 8)) and job.decoding is None


def test_generation_takes_its_categories_only():
    rules = Rules(
        ModelFacts("generation", "generation", {"name": "sampling", "temperature": 1.0}, ("English", "German")),
        Limits(),
    )
    assert rules.job(PredictRequest(input="German", num_samples=3)).text == "German"
    with pytest.raises(ClientError, match="unknown category 'Germn'; choose from: English, German"):
        rules.job(PredictRequest(input="Germn"))
    with pytest.raises(ClientError, match="takes no 'beam_size'"):
        rules.job(PredictRequest(input="German", beam_size=3))


def test_parse_request_says_what_is_wrong():
    with pytest.raises(ClientError, match="unknown field 'inptu' \\(did you mean 'input'\\?\\)"):
        parse_request(b'{"inptu": "x"}')
    with pytest.raises(ClientError) as error:
        parse_request(b'{"input": "x"')
    assert error.value.status == 400


def serve_main(*args: str) -> tuple[int, str]:
    """`python -m seqtasks.serve <args>` in this process for a command line it refuses -> (exit code, stderr)."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stderr(err):
        serve.main(list(args))
    return exit_.value.code, err.getvalue()


def test_command_line_mistakes_are_one_line_errors(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, message in [
            ([f"ckpt={tmp_path / 'missing.ckpt'}", f"port={free_port()}"], "missing.ckpt"),
            (["ckpt=x.ckpt", "port=80"], "port=80: choose a port from 1024 to 65535"),
            (["ckpt=x.ckpt", "host=example.com"], "host=example.com: choose 127.0.0.1 | 0.0.0.0 | ::"),
            (["ckpt=x.ckpt", f"port={port}"], f"127.0.0.1:{port} is taken"),
            (["ckpt=x.ckpt", "max_batch_size=0"], "max_batch_size"),
            (["ckpt=x.ckpt", "workers=0"], "workers"),
            (["ckpt=x.ckpt", "max_chars=-1"], "max_chars"),
        ]:
            code, stderr = serve_main(*args)
            assert code == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1 and message in stderr, stderr
