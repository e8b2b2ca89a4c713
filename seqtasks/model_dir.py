"""A trained model as a portable directory that needs no pickle at all (what `seqtasks.export`
writes, and what `load_checkpoint` reads when given a directory):

    <dir>/model.safetensors   the weights (safetensors: a flat, memory-mappable tensor file)
    <dir>/config.yaml         the task's name, its constructor arguments (hyperparameters) and the run config
    <dir>/tokenizers/         each tokenizer's state (<side>.json) and native files (sentencepiece .model)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import load_file, save

from seqtasks.atomic import atomic_write
from seqtasks.errors import DataError
from seqtasks.tokenizers.base import Tokenizer

WEIGHTS, CONFIG, TOKENIZERS = "model.safetensors", "config.yaml", "tokenizers"


def export(checkpoint: dict[str, Any], directory: Path) -> list[Path]:
    """Write a checkpoint read by load_checkpoint as a model directory -> the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    hyper_parameters = dict(checkpoint["hyper_parameters"])
    tokenizers = hyper_parameters.pop("tokenizers")
    # Tied weights share storage, which safetensors refuses: each tensor is written on its own.
    weights = {name: tensor.detach().clone().contiguous() for name, tensor in checkpoint["state_dict"].items()}
    with atomic_write(directory / WEIGHTS) as f:
        f.write(save(weights))
    config = {
        "task": checkpoint["seqtasks"]["task"],
        "hyper_parameters": hyper_parameters,
        "run_config": checkpoint["seqtasks"].get("config"),
    }
    with atomic_write(directory / CONFIG) as f:
        f.write(yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode("utf-8"))
    written = [directory / WEIGHTS, directory / CONFIG]
    for side, state in tokenizers.items():
        with atomic_write(directory / TOKENIZERS / f"{side}.json") as f:
            f.write((json.dumps(state, ensure_ascii=False) + "\n").encode("utf-8"))
        written.append(directory / TOKENIZERS / f"{side}.json")
        written += [p for p in Tokenizer.from_state(state).save(directory / TOKENIZERS, side) if p not in written]
    return written


def load_exported(directory: Path) -> dict[str, Any]:
    """A model directory written by `export`, in the shape of a checkpoint (for restore_task)."""
    for name in (WEIGHTS, CONFIG):
        if not (directory / name).is_file():
            raise DataError(directory, f"not a seqtasks model directory: {name} is missing")
    config = yaml.safe_load((directory / CONFIG).read_text(encoding="utf-8"))
    tokenizers = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((directory / TOKENIZERS).glob("*.json"))
    }
    return {
        "seqtasks": {"task": config["task"], "config": config["run_config"]},
        "hyper_parameters": {**config["hyper_parameters"], "tokenizers": tokenizers},
        "state_dict": load_file(str(directory / WEIGHTS)),
    }
