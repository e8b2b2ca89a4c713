"""A trained model as a portable directory that needs no pickle at all (what `seqtasks.export`
writes, and what `load_checkpoint` reads when given a directory):

    <dir>/model.safetensors   the weights (safetensors: a flat, memory-mappable tensor file)
    <dir>/config.yaml         the task's name, its constructor arguments (hyperparameters), the run config
                              and `digests`: the sha256 of every other file and of config.yaml's own content
    <dir>/tokenizers/         each tokenizer's state (<side>.json) and native files (sentencepiece .model)
    <dir>/onnx/               with `format=onnx` only: the ONNX graphs (seqtasks/onnx/), named by
                              config.yaml's `onnx` entry and digested like every other file

Loading checks the digests first, so a file changed after export fails naming it, instead of
loading as other weights (safetensors checks no tensor's bytes). A directory exported before
digests existed loads unchecked, with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import load_file, save

from seqtasks.errors import DataError
from seqtasks.runtime.atomic import atomic_write
from seqtasks.runtime.digest import ALGORITHM, digest, file_sha256, warn_undigested
from seqtasks.tokenizers.base import Tokenizer

WEIGHTS, CONFIG, TOKENIZERS = "model.safetensors", "config.yaml", "tokenizers"
DIGESTS = "digests"  # config.yaml's entry: {algorithm, files: {relative path: sha256}, config: sha256}
ONNX = "onnx"  # config.yaml's entry with format=onnx: {kind, opset, graphs: {name: {file, inputs, outputs}}}
ENTRIES = {"task", "hyper_parameters", "run_config", DIGESTS, ONNX}  # config.yaml's top level


def export(
    checkpoint: dict[str, Any],
    directory: Path,
    onnx: tuple[dict[str, bytes], dict[str, Any]] | None = None,
) -> list[Path]:
    """Write a checkpoint read by load_checkpoint as a model directory -> the files written. onnx:
    ({relative path: ONNX graph bytes}, the manifest naming them), from seqtasks.onnx.export_onnx."""
    directory.mkdir(parents=True, exist_ok=True)
    hyper_parameters = dict(checkpoint["hyper_parameters"])
    tokenizers = hyper_parameters.pop("tokenizers")
    # Tied weights share storage, which safetensors refuses: each tensor is written on its own.
    weights = {name: tensor.detach().clone().contiguous() for name, tensor in checkpoint["state_dict"].items()}
    with atomic_write(directory / WEIGHTS) as f:
        f.write(save(weights))
    written = [directory / WEIGHTS]
    for side, state in tokenizers.items():
        with atomic_write(directory / TOKENIZERS / f"{side}.json") as f:
            f.write((json.dumps(state, ensure_ascii=False) + "\n").encode("utf-8"))
        written.append(directory / TOKENIZERS / f"{side}.json")
        written += [p for p in Tokenizer.from_state(state).save(directory / TOKENIZERS, side) if p not in written]
    for name, content in (onnx[0] if onnx else {}).items():
        with atomic_write(directory / name) as f:
            f.write(content)
        written.append(directory / name)
    files = {path.relative_to(directory).as_posix(): file_sha256(path) for path in written}
    config = {
        "task": checkpoint["seqtasks"]["task"],
        "hyper_parameters": hyper_parameters,
        "run_config": checkpoint["seqtasks"].get("config"),
        DIGESTS: {"algorithm": ALGORITHM, "files": files},
    }
    if onnx:
        config[ONNX] = onnx[1]
    # Written last: after an interrupted export no config.yaml vouches for files it did not see written.
    with atomic_write(directory / CONFIG) as f:
        f.write(yaml_bytes(sealed_config(config)))
    return [directory / WEIGHTS, directory / CONFIG, *written[1:]]


def yaml_bytes(config: dict[str, Any]) -> bytes:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode("utf-8")


def sealed_config(config: dict[str, Any]) -> dict[str, Any]:
    """config with the digest of its own content (as read back from YAML: tuples become lists) added
    to its digests entry, which it covers too: a changed file digest is then blamed on config.yaml."""
    content = digest(yaml.safe_load(yaml_bytes(config)))["data"]
    return {**config, DIGESTS: {**config[DIGESTS], "config": content}}


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DataError(path, f"corrupt: not readable YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise DataError(path, "corrupt: not a mapping of task, hyper_parameters and run_config")
    return config


def verify(directory: Path, config: dict[str, Any]) -> None:
    """Check config.yaml's content and every file it lists against the digests export stored in it."""
    digests = config.get(DIGESTS)
    if digests is None:
        # An export from before digests loads unchecked; but a changed byte can also rename the
        # digests entry itself, which then shows as an entry no export writes.
        unknown = sorted(set(config) - ENTRIES)
        if unknown:
            raise DataError(directory / CONFIG, f"corrupt: no {DIGESTS} entry, and entries no export writes: {unknown}")
        warn_undigested(directory)
        return
    stored = digests.pop("config", None) if isinstance(digests, dict) else None
    if stored != digest(config)["data"] or digests.get("algorithm") != ALGORITHM:
        raise DataError(directory / CONFIG, "corrupt: its content differs from the digest stored in it")
    # That digest covers the list of files too, so it is the one export wrote.
    for name, sha256 in digests["files"].items():
        path = directory / name
        if not path.is_file():
            raise DataError(path, f"missing: {CONFIG} lists it among the files of this model")
        if file_sha256(path) != sha256:
            raise DataError(path, f"corrupt: its content differs from its digest in {CONFIG}")


def load_exported(directory: Path) -> dict[str, Any]:
    """A model directory written by `export`, in the shape of a checkpoint (for restore_task)."""
    for name in (WEIGHTS, CONFIG):
        if not (directory / name).is_file():
            raise DataError(directory, f"not a seqtasks model directory: {name} is missing")
    config = read_config(directory / CONFIG)
    verify(directory, config)
    tokenizers = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((directory / TOKENIZERS).glob("*.json"))
    }
    return {
        "seqtasks": {"task": config["task"], "config": config["run_config"]},
        "hyper_parameters": {**config["hyper_parameters"], "tokenizers": tokenizers},
        "state_dict": load_file(str(directory / WEIGHTS)),
    }


def read_onnx(directory: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """A model directory exported with format=onnx -> (its `onnx` manifest, {graph name: path}),
    after checking every digest (the manifest is inside config.yaml, whose own digest covers it)."""
    if not (directory / CONFIG).is_file():
        raise DataError(directory, f"not a seqtasks model directory: {CONFIG} is missing")
    config = read_config(directory / CONFIG)
    if ONNX not in config:
        raise DataError(directory / CONFIG, "has no ONNX graphs: export the model with format=onnx")
    if config.get(DIGESTS) is None:
        raise DataError(directory / CONFIG, "has ONNX graphs but no digests: export the model again")
    verify(directory, config)
    manifest = config[ONNX]
    return manifest, {name: directory / graph["file"] for name, graph in manifest["graphs"].items()}
