"""`python -m seqtasks.serve ckpt=<checkpoint or exported dir> [port=8000] [host=127.0.0.1]`: a trained model over HTTP.

One contract for every task (LitServe; the package seqtasks/serving/ holds the parts):

    POST /predict  {"input": "<one line as seqtasks.predict reads it>"}
                   -> {"output": "<the line seqtasks.predict writes for it>", ...the task's fields}
    optional: beam_size, n_best, temperature, seed, length, num_samples (what the task takes: /info)
    captioning:    {"image": "<a PNG or JPEG, base64>"} instead of "input"
    POST /stream   language models: the sample as it is generated, one JSON line per token
    GET  /         a web page for the model (offline: nothing is loaded from elsewhere)
    GET  /health   200 once the model is loaded;  GET /info: the task, its fields and limits,
                   a summary of the run's config, and the run's test metrics (metrics.json)

Structured fields: translation `n_best` (text, score) and `attention` (source, target, weights);
captioning `n_best`; classification `probabilities` (every label's); tagging `tokens` and `tags`;
language models and generation `samples`. Every answer has `batch_size`: how many requests shared
its decoding call. Concurrent requests with the same decoding are batched into one forward pass
(max_batch_size, batch_timeout); sampled ones run one by one, each from its own seed (default
seed=0, as predict), so the same request gets the same sample, whoever else is asking (a language
model's or generation's requests therefore never wait for a batch).

A client mistake (not JSON, an unknown or mistyped field, text over max_chars, an image that does
not decode, a body over max_body_bytes) gets a 4xx with {"error": "<what was wrong>"}; the server
goes on serving. It listens on 127.0.0.1 (this machine only) unless host= says otherwise:

    python -m seqtasks.serve ckpt=runs/translation/checkpoints/best.ckpt
    curl -s localhost:8000/predict --json '{"input": "Ein Hund rennt.", "beam_size": 5, "n_best": 3}'
"""

from __future__ import annotations

import signal
import socket
import sys
from dataclasses import fields

from omegaconf import DictConfig

from seqtasks.configuration.compose import command_config
from seqtasks.configuration.validation import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, check_value
from seqtasks.errors import USER_ERROR, ConfigError, SeqtasksError
from seqtasks.runtime.build import Inference, check_device

HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe binds to
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LIMITS = ("max_chars", "max_body_bytes", "max_length", "max_beam_size", "max_samples", "max_image_pixels")
COUNTS = ("max_batch_size", "workers", "length", *LIMITS)


def limits_of(cfg: DictConfig):
    from seqtasks.serving.schema import Limits  # pydantic and LitServe load only once the command line is good

    return Limits(**{f.name: cfg[f.name] for f in fields(Limits)})


def check_options(cfg: DictConfig) -> None:
    """The command line, checked before the model is read: numbers in range, a host LitServe binds
    to, a port that is free, a device that is there."""
    for key in COUNTS:
        check_value(key, cfg[key], PositiveInt)
    check_value("timeout", cfg.timeout, PositiveFloat)
    check_value("batch_timeout", cfg.batch_timeout, NonNegativeFloat)
    check_value("seed", cfg.seed, NonNegativeInt)
    if cfg.host not in HOSTS:
        raise ConfigError(f"host={cfg.host}: choose {' | '.join(HOSTS)} (127.0.0.1: this machine only)")
    if not isinstance(cfg.port, int) or not 1024 <= cfg.port <= 65535:
        raise ConfigError(f"port={cfg.port}: choose a port from 1024 to 65535")
    if cfg.log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level={cfg.log_level}: choose {' | '.join(LOG_LEVELS)}")
    check_device(cfg.device)
    check_port_free(cfg.host, cfg.port)


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(f"port={port}: {host}:{port} is taken ({error.strerror}); choose another port") from None


def require_litserve() -> None:
    try:
        import litserve  # noqa: F401
    except ImportError:
        raise ConfigError("python -m seqtasks.serve needs LitServe: pip install -e '.[serve]'") from None


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = command_config("serve", argv, __doc__)
        check_options(cfg)
        require_litserve()
        from seqtasks.serving.server import build_server

        server = build_server(
            str(cfg.ckpt),
            list(cfg.plugins),
            limits_of(cfg),
            inference=Inference.of(cfg),
            max_batch_size=cfg.max_batch_size,
            batch_timeout=float(cfg.batch_timeout),
            workers=cfg.workers,
            timeout=float(cfg.timeout),
            seed=cfg.seed,
            length=cfg.length,
        )
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)
    model = server.model_metadata
    print(
        f"serving {model['task']} ({cfg.ckpt}) on http://{cfg.host}:{cfg.port}/ once /health answers 200: "
        "the page at /, POST /predict" + (", POST /stream" if model["stream"] else "") + "; Ctrl-C stops it",
        file=sys.stderr,
    )
    # LitServe stops its workers on Ctrl-C; a SIGTERM (kill, a service manager) would leave them
    # serving on the port without their parent. Both now stop the whole server.
    signal.signal(signal.SIGTERM, interrupt)
    server.run(host=cfg.host, port=cfg.port, num_api_servers=1, generate_client_file=False, log_level=cfg.log_level)


if __name__ == "__main__":
    main()
