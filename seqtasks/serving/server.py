"""The LitServer of one trained model: its APIs, the request checks in front of them, `/info`'s
model entry and the page at `/`. LitServe provides the rest: the inference worker, dynamic
batching (max_batch_size, batch_timeout), streaming, `/health` (200 once the model is loaded)."""

from __future__ import annotations

from typing import Any

import litserve as ls
import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from seqtasks.configuration.plugins import load_plugins
from seqtasks.runtime.build import PYTORCH_FP32_CPU, Inference, load_task
from seqtasks.serving.api import PredictAPI, StreamAPI
from seqtasks.serving.info import model_facts, model_metadata
from seqtasks.serving.middleware import CheckRequests
from seqtasks.serving.page import add_page
from seqtasks.serving.predictors import BATCHED
from seqtasks.serving.rules import Rules
from seqtasks.serving.schema import Limits


def build_server(
    ckpt: str,
    plugins: list[str],
    limits: Limits,
    inference: Inference = PYTORCH_FP32_CPU,
    max_batch_size: int = 16,
    batch_timeout: float = 0.01,
    workers: int = 1,
    timeout: float = 60.0,
    seed: int = 0,
    length: int = 500,
) -> ls.LitServer:
    """The server of the model in ckpt (a checkpoint or an exported directory). The model is read
    here once for what the rules and /info need (a broken checkpoint, or a backend it cannot run on,
    fails before any worker starts), then again by each of the `workers` inference workers, which
    share this process's CPU threads between them."""
    load_plugins(plugins)
    task = load_task(ckpt, inference)
    rules = Rules(model_facts(task), limits, seed=seed, length=length)
    stream = rules.facts.kind == "language_model"
    if rules.facts.kind not in BATCHED:  # each request decodes on its own: a batch window would only delay it
        max_batch_size = 1
    threads = max(1, torch.get_num_threads() // workers)  # per worker: together no more than the machine's
    apis: list[Any] = [PredictAPI(ckpt, plugins, rules, inference, threads, max_batch_size, batch_timeout)]
    if stream:
        apis.append(StreamAPI(ckpt, plugins, rules, inference, threads))
    check = {"rules": rules, "paths": [api.api_path for api in apis], "stream_paths": ["/stream"] if stream else []}
    server = ls.LitServer(
        apis,
        accelerator="cuda" if inference.device == "cuda" else "cpu",
        devices=1,
        workers_per_device=workers,
        timeout=timeout,
        model_metadata=model_metadata(ckpt, task, rules, stream, max_batch_size, workers, threads, inference),
        middlewares=[(CheckRequests, check)],
    )
    add_page(server.app)
    answer_errors_alike(server.app)
    return server


def answer_errors_alike(app: FastAPI) -> None:
    """Every error as {"error": "..."}, as CheckRequests answers: FastAPI's own (404, 405, a body it
    cannot validate) and LitServe's (504 for a request that waited too long, 500) say "detail"."""

    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in error.errors())
        return JSONResponse({"error": problems}, status_code=422)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_body)
