"""The run's own options (conf/config.yaml outside the components): checked before a run is
accepted, so that a wrong value fails in one line naming the key, before any file of the run is
written or a first stage trains, instead of a traceback mid-run or a value quietly read as
another (patience 0 or decay 0 meaning off, a string 'no' meaning true).

The callbacks' groups (samples, telemetry, attention_images) are checked against their
constructors' annotations, as components are; the rest against `OPTIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from seqtasks.callbacks.attention import AttentionImages
from seqtasks.callbacks.samples import SampleEvolution
from seqtasks.callbacks.telemetry import Telemetry
from seqtasks.configuration.registry import check_arguments
from seqtasks.configuration.validation import PositiveFloat, PositiveInt, Range, check_value
from seqtasks.errors import ConfigError

Decay = Annotated[float, Range(low=0, high=1, low_open=True, high_open=True)]
Seed = Annotated[int, Range(low=0, high=2**32 - 1)]  # what numpy's generator accepts

# key -> what it takes. null turns off what null turns off; 0 is refused where it would too.
OPTIONS = {
    "seed": Seed | None,
    "plugins": list[str],
    "keep_freed_memory": bool,
    "resume": str | None,
    "init_from.checkpoint": str | None,
    "init_from.parts": list[str] | None,
    "pretrain.overrides": list[str] | None,
    "checkpoint.save_last": bool,
    "checkpoint.every_n_steps": PositiveInt | None,
    "checkpoint.every_n_minutes": PositiveFloat | None,
    "checkpoint.keep_every_n_steps": PositiveInt | None,
    "early_stopping.patience": PositiveInt | None,
    "ema.decay": Decay | None,
}
# Each group of options, and the value that turns off what it does (a group is never null itself).
OFF = {
    "init_from": "init_from.checkpoint=null",
    "pretrain": "pretrain.overrides=null",
    "checkpoint": "checkpoint.save_last=false",
    "early_stopping": "early_stopping.patience=null",
    "ema": "ema.decay=null",
    "samples": "samples.every_n_steps=0",
    "telemetry": "telemetry.every_n_steps=0",
    "attention_images": "attention_images.sentences=0",
}
# The callbacks these groups configure, and the arguments the run passes them itself (paths).
CALLBACKS = {
    "samples": (SampleEvolution, ("path",)),
    "telemetry": (Telemetry, ("directory",)),
    "attention_images": (AttentionImages, ("directory",)),
}


def check_run_options(cfg: Mapping[str, Any]) -> None:
    """ConfigError naming the first run option whose value it cannot take (cfg: plain data)."""
    for group, off in OFF.items():
        if group in cfg and not isinstance(cfg[group], Mapping):
            raise ConfigError(f"{group}={cfg[group]!r}: expected the group's options; {off} turns it off")
    for key, annotation in OPTIONS.items():
        group, _, option = key.rpartition(".")
        options = cfg.get(group, {}) if group else cfg
        if option in options:
            check_value(key, options[option], annotation)
    for group, (callback, given) in CALLBACKS.items():
        if group in cfg:
            check_arguments(callback, cfg[group], group, given=given)
            callback(**cfg[group])  # built and dropped: its constructor checks what spans options
    check_checkpointing(cfg.get("checkpoint", {}))
    init = cfg.get("init_from", {})
    if init.get("checkpoint") and not Path(init["checkpoint"]).exists():
        raise ConfigError(f"init_from.checkpoint={init['checkpoint']}: no checkpoint file or model directory there")
    if init.get("parts") and not init.get("checkpoint") and not cfg.get("pretrain", {}).get("overrides"):
        raise ConfigError(
            "init_from.parts chooses modules of the checkpoint a run starts from, and this run starts from none: "
            "give init_from.checkpoint=<ckpt> (or pretrain.overrides), or leave init_from.parts null"
        )


def check_checkpointing(checkpoint: Mapping[str, Any]) -> None:
    """save_top_k: one best checkpoint or none. best.ckpt is one file name, so Lightning's top k > 1
    would overwrite it at every validation that enters the top k, the last of them winning."""
    top_k = checkpoint.get("save_top_k", 1)
    if top_k not in (0, 1) or isinstance(top_k, bool):
        raise ConfigError(
            f"checkpoint.save_top_k={top_k}: a run keeps its best checkpoint (1: checkpoints/best.ckpt) or none (0); "
            "to keep a series of checkpoints (e.g. to average them), set checkpoint.keep_every_n_steps"
        )
