"""What the server tells about its model: the facts its request rules need, and `/info`'s
`model` entry (the task, what a request may send, a summary of the run's config, and the test
metrics of the run when its metrics.json is beside the checkpoint)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seqtasks.errors import ConfigError
from seqtasks.runtime.build import Inference
from seqtasks.serving.rules import ModelFacts, Rules
from seqtasks.tasks.captioning import CaptioningTask
from seqtasks.tasks.classification import ClassificationTask
from seqtasks.tasks.generation import GenerationTask
from seqtasks.tasks.language_model import LanguageModelTask
from seqtasks.tasks.tagging import TaggingTask
from seqtasks.tasks.translation import TranslationTask

log = logging.getLogger(__name__)

KINDS = (
    (TranslationTask, "translation"),
    (CaptioningTask, "captioning"),
    (LanguageModelTask, "language_model"),
    (GenerationTask, "generation"),
    (ClassificationTask, "classification"),
    (TaggingTask, "tagging"),
)
SUMMARISED = ("task", "data", "tokenizer", "encoder", "image_encoder", "head", "decoding")


def kind_of(task: Any) -> str:
    """How the server runs a task: by the built-in task it is (or extends); 'lines' for any other."""
    return next((kind for cls, kind in KINDS if isinstance(task, cls)), "lines")


def model_facts(task: Any) -> ModelFacts:
    kind = kind_of(task)
    if kind == "captioning" and task.inputs["kind"] != "image":
        raise ConfigError(
            f"this captioning model reads precomputed {task.inputs['kind']} inputs, not images: the server "
            "takes uploaded images only (serve a model trained with image_encoder=cnn)"
        )
    decoding = task.hparams.get("decoding")
    return ModelFacts(
        task=task.registered_name,
        kind=kind,
        decoding=dict(decoding) if decoding is not None else None,
        categories=tuple(task.categories) if kind == "generation" else (),
        image_size=task.inputs["image_size"] if kind == "captioning" else None,
    )


def model_metadata(
    ckpt: str,
    task: Any,
    rules: Rules,
    stream: bool,
    max_batch_size: int,
    workers: int,
    threads: int,
    inference: Inference,
) -> dict[str, Any]:
    """/info's `model`: everything the web page needs to draw the task's form, and what a client
    may want to know of the model before it sends anything."""
    facts = rules.facts
    labels = task.labels if facts.kind == "classification" else task.tags if facts.kind == "tagging" else []
    return {
        "task": facts.task,
        "kind": facts.kind,
        "checkpoint": str(ckpt),
        "backend": inference.backend,  # torch | onnxruntime: what runs the model's tensor math
        "quantize": inference.quantize,  # null (fp32) | int8 | bf16
        "fields": list(rules.fields),
        "defaults": {"seed": rules.seed, "length": rules.length},
        "limits": asdict(rules.limits),
        "decoding": facts.decoding,
        "categories": list(facts.categories),
        "labels": list(labels),
        "attention": facts.kind == "translation" and task.decoder.attention is not None,
        "stream": "/stream" if stream else None,
        "max_batch_size": max_batch_size,  # 1 for a task whose requests never share a call (sampled each alone)
        "workers": workers,  # inference processes, each with its own copy of the model
        "threads_per_worker": threads,  # the CPU threads each decodes with
        "parameters": sum(parameter.numel() for parameter in task.parameters()),
        "config": config_summary(task.run_config),
        "metrics": tested_metrics(Path(ckpt)),
    }


def config_summary(run_config: dict | None) -> dict[str, dict]:
    """The options of the run's main groups, without nested settings (optimizer and the like)."""
    config = run_config or {}
    return {
        group: {key: value for key, value in config[group].items() if not isinstance(value, dict | list)}
        for group in SUMMARISED
        if isinstance(config.get(group), dict)
    }


def metrics_file(ckpt: Path) -> Path | None:
    """The run's metrics.json, which describes its best checkpoint: in the run directory above
    checkpoints/best.ckpt, or inside an exported model directory."""
    if ckpt.is_dir():
        candidate = ckpt / "metrics.json"
    elif ckpt.name == "best.ckpt" and ckpt.parent.name == "checkpoints":
        candidate = ckpt.parent.parent / "metrics.json"
    else:
        return None
    return candidate if candidate.is_file() else None


def tested_metrics(ckpt: Path) -> dict[str, Any] | None:
    """The test/ entries of the checkpoint's metrics.json; None without any (or a file that cannot be read)."""
    path = metrics_file(ckpt)
    if path is None:
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("%s: not shown in /info (%s)", path, error)
        return None
    if not isinstance(metrics, dict):
        return None
    tested = {key: value for key, value in metrics.items() if key.startswith("test/")}
    return tested or None  # a run without a test split has validation metrics only
