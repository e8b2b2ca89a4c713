"""Load test of `python -m seqtasks.serve` on 127.0.0.1, with LitServe's dynamic batching off and
on: for each max_batch_size it starts the server, sends N requests to POST /predict, C at a time
(after C warm-up requests), stops the server, and prints latency percentiles, requests per second,
errors, and the mean batch size the answers report. It stops by itself: N requests, each with a
timeout.

    python scripts/bench_serve.py <run>/checkpoints/best.ckpt [--requests 200] [--concurrency 16] \
        [--batch-sizes 1 16] [--inputs lines.txt] [--fields '{"beam_size": 5}'] [--server quantize=int8]
    python scripts/bench_serve.py --url http://127.0.0.1:8000 ...   # a server already running instead

Inputs are the lines of --inputs (cycled), by default a few short sentences; captioning takes
--image <png or jpeg> instead. --fields adds decoding fields to every request (a language model's
length, say). The numbers are the machine's: run both settings in one call, on an otherwise idle
machine, before comparing them.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle, islice
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]

SENTENCES = [
    "a b c d",
    "Ein Hund rennt durch den Schnee.",
    "the quick brown fox",
    "Zwei Männer spielen Fußball auf einer Wiese.",
    "f e d",
    "Eine Frau liest ein Buch.",
    "c a b e",
    "Kinder spielen im Park.",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"error: the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"error: {url}/health did not answer 200 within {timeout:.0f} s")


def start_server(
    ckpt: str, batch_size: int, batch_timeout: float, options: list[str], log
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    arguments = [f"ckpt={ckpt}", f"port={port}", f"max_batch_size={batch_size}", f"batch_timeout={batch_timeout}"]
    arguments += options
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout's seqtasks
    process = subprocess.Popen(
        [sys.executable, "-m", "seqtasks.serve", *arguments, "log_level=warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": path},
        start_new_session=True,  # the server and its workers in one group, stopped together
    )
    return process, f"http://127.0.0.1:{port}"


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def load(url: str, bodies: list[bytes], concurrency: int, timeout: float) -> tuple[list[float], int, list[int], float]:
    """Send every body, `concurrency` at a time, each thread on a keep-alive connection of its own ->
    (latencies in seconds of the successful requests, errors, reported batch sizes, wall seconds)."""
    where = urlsplit(url)
    per_thread = [bodies[i::concurrency] for i in range(concurrency)]

    def worker(share: list[bytes]) -> tuple[list[float], int, list[int]]:
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
        latencies, errors, batches = [], 0, []
        for body in share:
            start = time.perf_counter()
            try:
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
                continue
            if response.status != 200:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)
            batches.append(json.loads(answer).get("batch_size", 1))
        connection.close()
        return latencies, errors, batches

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(worker, per_thread))
    wall = time.perf_counter() - start
    return [x for r in results for x in r[0]], sum(r[1] for r in results), [x for r in results for x in r[2]], wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def request_bodies(args: argparse.Namespace) -> list[bytes]:
    fields = json.loads(args.fields)
    if args.image:
        with open(args.image, "rb") as f:
            requests = [{"image": base64.b64encode(f.read()).decode(), **fields}]
    else:
        lines = SENTENCES
        if args.inputs:
            with open(args.inputs, encoding="utf-8") as f:
                lines = [line.rstrip("\n") for line in f if line.strip()]
        requests = [{"input": line, **fields} for line in lines]
    return [json.dumps(r).encode() for r in islice(cycle(requests), args.requests)]


def report(setting: str, latencies: list[float], errors: int, batches: list[int], wall: float) -> None:
    done = len(latencies)
    mean_batch = statistics.fmean(batches) if batches else float("nan")
    print(
        f"{setting:>16}  {done + errors:>8}  {errors:>6}  {done / wall:>8.1f}  "
        + "  ".join(f"{1000 * percentile(latencies, q):>8.1f}" for q in (50, 95, 99))
        + f"  {mean_batch:>10.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", nargs="?", help="a checkpoint or exported model directory to serve")
    parser.add_argument("--url", help="bench this running server instead of starting one per batch size")
    parser.add_argument("--requests", type=int, default=200, help="requests per setting (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once (default 16)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16], help="max_batch_size settings")
    parser.add_argument("--batch-timeout", type=float, default=0.01, help="the server's batch_timeout")
    parser.add_argument("--inputs", help="a text file: one input line per request (cycled)")
    parser.add_argument("--image", help="captioning: the PNG or JPEG every request sends")
    parser.add_argument("--fields", default="{}", help="JSON added to every request, e.g. '{\"length\": 100}'")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take")
    parser.add_argument("--startup", type=float, default=300.0, help="seconds the server may take to start")
    parser.add_argument("--server", nargs="*", default=[], help="more seqtasks.serve options: quantize=int8")
    args = parser.parse_args()
    if (args.ckpt is None) == (args.url is None):
        parser.error("give a checkpoint to serve, or --url of a running server")
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    bodies = request_bodies(args)
    warm_up = bodies[: args.concurrency]
    print(f"{args.requests} requests, {args.concurrency} at a time, {os.cpu_count()} CPUs", flush=True)
    print(
        f"{'max_batch_size':>16}  {'requests':>8}  {'errors':>6}  {'req/s':>8}  "
        f"{'p50 ms':>8}  {'p95 ms':>8}  {'p99 ms':>8}  {'mean batch':>10}",
        flush=True,
    )
    if args.url:
        wait_healthy(args.url, None, args.startup)
        load(args.url, warm_up, args.concurrency, args.timeout)
        report("(running)", *load(args.url, bodies, args.concurrency, args.timeout))
        return
    for batch_size in args.batch_sizes:
        with tempfile.TemporaryFile() as log:
            process, url = start_server(args.ckpt, batch_size, args.batch_timeout, args.server, log)
            try:
                wait_healthy(url, process, args.startup)
                load(url, warm_up, args.concurrency, args.timeout)
                report(str(batch_size), *load(url, bodies, args.concurrency, args.timeout))
            except BaseException:
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace")[-3000:])
                raise
            finally:
                stop_server(process)


if __name__ == "__main__":
    main()
