"""The body of `POST /predict` (and `/stream`), one schema for every task, and the client errors
the server answers with instead of a 500.

The model checks JSON types only (strict: `"3"` is no integer, `3.0` no beam size, NaN no
temperature); what depends on the task and on the server's limits is `seqtasks.serving.rules`'.
Absent and `null` both mean "not given".
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from seqtasks.configuration.validation import did_you_mean


class PredictRequest(BaseModel):
    """One input line (or one image) and how to decode it."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    input: str | None = None  # one line as seqtasks.predict reads it (a language model: the prime)
    image: str | None = None  # captioning: a PNG or JPEG, base64 (a data: URL too)
    beam_size: int | None = None  # beam search with this many hypotheses
    n_best: int | None = None  # hypotheses returned, best first
    temperature: float | None = None  # sampling at this temperature (0: the most probable token)
    seed: int | None = None  # seeds sampling, as predict's seed=
    length: int | None = None  # language models: tokens to generate
    num_samples: int | None = None  # language models, generation: samples per input


FIELDS = tuple(PredictRequest.model_fields)


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server (conf/serve.yaml); more is a client error naming the limit."""

    max_chars: int = 2000  # characters of `input`
    max_body_bytes: int = 8_000_000  # bytes of a request body (a base64 image is most of it)
    max_length: int = 2000  # `length`
    max_beam_size: int = 16  # `beam_size`
    max_samples: int = 16  # `num_samples` and `n_best`
    max_image_pixels: int = 4096 * 4096  # width x height of an uploaded image, before it is decoded


class ClientError(Exception):
    """A request the server will not run: answered with `status` and {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_request(body: bytes) -> PredictRequest:
    """The request in a body, or a ClientError saying what was wrong with it (400: not JSON; 422:
    not a request of this schema)."""
    try:
        return PredictRequest.model_validate_json(body)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        if any(problem["type"] == "json_invalid" for problem in problems):
            raise ClientError(400, f"the body is not valid UTF-8 JSON: {problems[0]['msg']}") from None
        raise ClientError(422, "; ".join(describe(problem) for problem in problems)) from None


def describe(problem: dict) -> str:
    """One pydantic error in the words of this API."""
    where = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "model_type":
        return 'the body must be a JSON object such as {"input": "..."}'
    if problem["type"] == "extra_forbidden":
        return f"unknown field '{where}'{did_you_mean(where, FIELDS)}; fields: {', '.join(FIELDS)}"
    return f"{where}: {problem['msg'][0].lower()}{problem['msg'][1:]}"
