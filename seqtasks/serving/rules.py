"""What a request may ask of the loaded model, checked before it is queued: a `PredictRequest` ->
a `Job`, or a `ClientError` that says what was wrong.

Every check is here, in the HTTP process, and none in the inference worker: LitServe fails a whole
dynamic batch when one of its requests raises, so a request that reaches the worker must be one it
can run. The worker turns the same request into the same Job again (`Rules.job`), so the two
processes cannot disagree.

Decoding fields map onto the `decoding` registry the way `seqtasks.predict decoding=...` does,
starting from the model's own strategy (the run's `decoding` group): `temperature` samples,
`beam_size` searches a beam, `n_best` sets how many hypotheses come back; none of them keeps the
model's own strategy.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from seqtasks.configuration.registry import DECODING
from seqtasks.decoding import BeamSearch, DecodingStrategy, TokenByToken
from seqtasks.errors import ConfigError
from seqtasks.serving.schema import ClientError, Limits, PredictRequest

# The request fields each kind of task takes, its input first.
TASK_FIELDS = {
    "translation": ("input", "beam_size", "n_best", "temperature", "seed"),
    "captioning": ("image", "beam_size", "n_best", "temperature", "seed"),
    "language_model": ("input", "temperature", "seed", "length", "num_samples"),
    "generation": ("input", "temperature", "seed", "num_samples"),
    "classification": ("input",),
    "tagging": ("input",),
    "lines": ("input", "seed"),  # any other task: its predict_lines, one line in, its output out
}
IMAGE_FORMATS = ("PNG", "JPEG")
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ModelFacts:
    """What the rules need to know of the loaded model (`seqtasks.serving.info.model_facts`)."""

    task: str  # its registered name
    kind: str  # a key of TASK_FIELDS
    decoding: dict | None = None  # the run's decoding config; None: the task does not decode
    categories: tuple[str, ...] = ()  # generation: the categories it generates for
    image_size: int | None = None  # captioning: the side images are resized to


@dataclass(frozen=True)
class Job:
    """One checked request, as the inference worker runs it."""

    text: str | None  # the input line (the prime of a language model); None for an image
    image: bytes | None  # captioning: the uploaded file's bytes, known to decode
    decoding: dict | None  # a `decoding` registry config; None: the model's own strategy
    seed: int
    length: int
    num_samples: int
    batch_key: str = field(init=False)  # jobs with equal keys may share one decoding call

    def __post_init__(self) -> None:
        key = json.dumps([self.decoding, self.length, self.num_samples], sort_keys=True)
        object.__setattr__(self, "batch_key", key)


@dataclass(frozen=True)
class Rules:
    facts: ModelFacts
    limits: Limits
    seed: int = 0  # what a request that sets none gets: seqtasks.predict's defaults
    length: int = 500

    @property
    def fields(self) -> tuple[str, ...]:
        return TASK_FIELDS[self.facts.kind]

    def job(self, request: PredictRequest, stream: bool = False) -> Job:
        """The request as a Job, or a ClientError (422) naming the field and what it takes."""
        given = [name for name, value in request if value is not None]
        for name in given:
            if name not in self.fields:
                raise ClientError(
                    422,
                    f"task '{self.facts.task}' takes no '{name}'; its fields: {', '.join(self.fields)}",
                )
        self.check_ranges(request)
        decoding = self.decoding(request)
        strategy = self.strategy(decoding)
        num_samples = request.num_samples or 1
        if stream:
            self.check_streamable(strategy)
        if isinstance(strategy, BeamSearch) and "num_samples" in self.fields:
            try:
                strategy.check_n(num_samples)
            except ConfigError as error:
                raise ClientError(422, str(error)) from None
        image = self.image(request.image) if self.facts.kind == "captioning" else None
        text = None if self.facts.kind == "captioning" else self.text(request.input)
        seed = self.seed if request.seed is None else request.seed
        return Job(text, image, decoding, seed, request.length or self.length, num_samples)

    # --- fields ----------------------------------------------------------------------------------
    def check_ranges(self, request: PredictRequest) -> None:
        limits = self.limits
        within("beam_size", request.beam_size, 1, limits.max_beam_size, "max_beam_size")
        within("n_best", request.n_best, 1, limits.max_samples, "max_samples")
        within("num_samples", request.num_samples, 1, limits.max_samples, "max_samples")
        within("length", request.length, 1, limits.max_length, "max_length")
        within("seed", request.seed, 0, MAX_SEED)
        if request.temperature is not None and request.temperature < 0:
            raise ClientError(422, f"temperature must be 0 or more (0: the best token), got {request.temperature}")

    def text(self, text: str | None) -> str:
        what = "the prime to continue" if self.facts.kind == "language_model" else "one input line"
        if text is None:
            raise ClientError(422, f'\'input\' is required: {what}, e.g. {{"input": "..."}}')
        if len(text) > self.limits.max_chars:
            most = self.limits.max_chars
            raise ClientError(422, f"input is {len(text)} characters; this server takes at most {most} (max_chars)")
        # A line as seqtasks.predict reads it has no line break; a prime is free text.
        if "\n" in text and self.facts.kind != "language_model":
            raise ClientError(422, "input is one line: it may not hold a line break ('\\n'); send one request per line")
        if self.facts.kind == "generation" and text.strip() and text.strip() not in self.facts.categories:
            raise ClientError(
                422, f"unknown category {text.strip()!r}; choose from: {', '.join(self.facts.categories)}"
            )
        return text

    def image(self, data: str | None) -> bytes:
        if data is None:
            raise ClientError(422, "'image' is required: a PNG or JPEG file, base64-encoded")
        raw = image_bytes(data)
        image_array(raw, self.facts.image_size or 1, self.limits.max_image_pixels)  # refused now, not in the worker
        return raw

    # --- decoding --------------------------------------------------------------------------------
    def decoding(self, request: PredictRequest) -> dict | None:
        """The decoding config the request asks for; None: the model's own."""
        own = self.facts.decoding
        if own is None or (request.beam_size is None and request.temperature is None and request.n_best is None):
            return None
        if request.beam_size is not None and request.temperature is not None:
            raise ClientError(422, "give beam_size (beam search) or temperature (sampling), not both")
        if request.temperature is not None:
            config = {**same_or_new(own, "sampling"), "temperature": request.temperature}
        elif request.beam_size is not None:
            config = {**same_or_new(own, "beam"), "beam_size": request.beam_size}
        else:
            config = dict(own)
        if request.n_best is not None:
            config["n_best"] = request.n_best
        if config.get("name") == "beam" and config.get("n_best", 1) > config.get("beam_size", 5):
            raise ClientError(
                422,
                f"n_best={config['n_best']} is more than the beam holds (beam_size={config.get('beam_size', 5)}): "
                "raise beam_size",
            )
        return config

    def strategy(self, decoding: dict | None) -> DecodingStrategy | None:
        """The strategy a Job decodes with (None: the task does not decode)."""
        if decoding is None:
            return None if self.facts.decoding is None else build_strategy(self.facts.decoding)
        try:
            return build_strategy(decoding)
        except ConfigError as error:
            raise ClientError(422, str(error)) from None

    def check_streamable(self, strategy: DecodingStrategy | None) -> None:
        if not isinstance(strategy, TokenByToken):
            raise ClientError(
                422, "/stream samples token by token: leave out beam search (or POST /predict for the whole text)"
            )


def same_or_new(own: dict, name: str) -> dict:
    """The model's own decoding config when it is of strategy `name` (a request keeps its other
    settings: top_k, length_penalty), else that strategy's defaults."""
    return own if own.get("name") == name else {"name": name}


def build_strategy(config: dict) -> DecodingStrategy:
    return DECODING.build(dict(config), "decoding")


def deterministic(strategy: DecodingStrategy | None) -> bool:
    """Whether a strategy's output depends on nothing but its input: only then may the requests of
    different clients share one call (a sampled one draws from one generator for the whole call)."""
    return strategy is None or not strategy.draws_at_random


def within(name: str, value: int | None, low: int, high: int, limit: str | None = None) -> None:
    if value is not None and not low <= value <= high:
        shown = str(value) if len(str(value)) <= 24 else f"{str(value)[:21]}..."
        why = f" ({limit} of this server)" if limit else ""
        raise ClientError(422, f"{name} must be from {low} to {high}{why}, got {shown}")


def image_bytes(data: str) -> bytes:
    """A base64 string (or a data: URL, as a browser's FileReader gives) -> the file's bytes."""
    if data.startswith("data:"):
        header, _, data = data.partition(",")
        if not header.endswith(";base64"):
            raise ClientError(422, "image: a data: URL must be base64 (data:image/png;base64,...)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ClientError(422, f"image: not base64 ({error})") from None
    if not raw:
        raise ClientError(422, "image: empty")
    return raw


def image_array(raw: bytes, size: int, max_pixels: int) -> np.ndarray:
    """An uploaded PNG or JPEG as the model reads images: RGB, uint8 (size, size, 3), resized as
    `seqtasks.data.images.load_input` resizes a file."""
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format not in IMAGE_FORMATS:
                raise ClientError(422, f"image: a {image.format} file; send a PNG or JPEG")
            width, height = image.size
            if width * height > max_pixels:
                raise ClientError(
                    422, f"image: {width}x{height} pixels; this server takes at most {max_pixels} (max_image_pixels)"
                )
            rgb = image.convert("RGB")
    except ClientError:
        raise
    except Exception as error:  # a damaged file raises whatever the decoder hits (OSError, SyntaxError, ...)
        raise ClientError(422, f"image: cannot be read ({type(error).__name__}: {error})") from None
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)
