"""The LitServe APIs: `POST /predict` for every task (dynamically batched), and `POST /stream`
for a language model's samples as they are generated.

LitServe runs each in an inference worker process of its own (spawned, so the API object travels
pickled: it holds the checkpoint's path and the rules, and loads the model in `setup`). Requests
reach the worker already checked (`seqtasks.serving.middleware`); `decode_request` turns each into
its Job with the same rules.
"""

# No `from __future__ import annotations`: LitServe hands decode_request's annotation to FastAPI as
# it finds it, and FastAPI cannot resolve a string from another module.
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import litserve as ls
import torch

from seqtasks.configuration.plugins import load_plugins
from seqtasks.runtime.build import Inference, load_task
from seqtasks.serving.predictors import predict_jobs
from seqtasks.serving.rules import Job, Rules
from seqtasks.serving.schema import PredictRequest
from seqtasks.serving.stream import stream_samples


class ModelAPI(ls.LitAPI):
    """What both APIs share: the model, loaded once per worker, the request rules, and the CPU
    threads each worker decodes with."""

    def __init__(self, ckpt: str, plugins: list[str], rules: Rules, inference: Inference, threads: int, **litapi: Any):
        super().__init__(**litapi)
        self.ckpt, self.plugins, self.rules, self.inference = ckpt, list(plugins), rules, inference
        self.threads = threads
        self.task: Any = None

    def setup(self, device: str) -> None:
        load_plugins(self.plugins)  # a spawned worker has imported none of them
        if device == "cpu":
            torch.set_num_threads(self.threads)
        self.task = load_task(self.ckpt, replace(self.inference, device=device)).to(device)


class PredictAPI(ModelAPI):
    """`{"input": ...}` -> `{"output": <predict's line>, ...}`; concurrent requests share a batch."""

    def __init__(
        self,
        ckpt: str,
        plugins: list[str],
        rules: Rules,
        inference: Inference,
        threads: int,
        max_batch_size: int,
        batch_timeout: float,
    ):
        super().__init__(
            ckpt, plugins, rules, inference, threads, max_batch_size=max_batch_size, batch_timeout=batch_timeout
        )

    # The annotation tells LitServe (FastAPI) the body's schema: /docs shows it.
    def decode_request(self, request: PredictRequest) -> Job:
        return self.rules.job(request)

    def predict(self, jobs: Job | list[Job]) -> dict[str, Any] | list[dict[str, Any]]:
        # LitServe hands over a list when it batches (max_batch_size > 1), else the one job.
        batch = jobs if isinstance(jobs, list) else [jobs]
        results = predict_jobs(self.task, self.rules.facts.kind, batch, self.rules.limits.max_image_pixels)
        return results if isinstance(jobs, list) else results[0]

    def encode_response(self, output):
        return output


class StreamAPI(ModelAPI):
    """A language model's samples as JSON lines, one message per generated token."""

    def __init__(self, ckpt: str, plugins: list[str], rules: Rules, inference: Inference, threads: int):
        super().__init__(ckpt, plugins, rules, inference, threads, api_path="/stream", stream=True)

    def decode_request(self, request: PredictRequest) -> Job:
        return self.rules.job(request, stream=True)

    def predict(self, job: Job) -> Iterator[dict[str, Any]]:
        yield from stream_samples(self.task, job)

    def encode_response(self, outputs):
        yield from outputs
