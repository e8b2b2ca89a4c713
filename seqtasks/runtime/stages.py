"""A run in two stages, as ULMFiT trains (Howard and Ruder 2018): `pretrain.overrides` is the
command line of a first run (a language model on in-domain text), trained into <run dir>/pretrain;
the run itself then starts from that run's best checkpoint (`init_from.checkpoint`, with
`init_from.parts` choosing its modules). One command, both stages, each with its own time budget.

The first stage is composed and checked when the run is accepted, so a mistake in it fails before
either stage trains. A finished first stage (its metrics.json written, its config the same) is used
again when the command is run again into the same directory, so a second stage that failed does not
cost the first one's time twice.
"""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from seqtasks.configuration.compose import compose_config
from seqtasks.configuration.plugins import load_plugins
from seqtasks.errors import ConfigError
from seqtasks.runtime.run_record import resolved_config

STAGE_DIRECTORY = "pretrain"


def first_stage(cfg: DictConfig) -> DictConfig | None:
    """The first stage's composed config, or None when the run has none."""
    overrides = (cfg.get("pretrain") or {}).get("overrides")
    if not overrides:
        return None
    if (cfg.get("init_from") or {}).get("checkpoint"):
        raise ConfigError(
            "pretrain.overrides and init_from.checkpoint both choose the weights this run starts from; give one"
        )
    devices = cfg.trainer.get("devices", 1)
    one_device = str(devices) == "1" or (isinstance(devices, ListConfig) and len(devices) == 1)  # auto: maybe all
    if not one_device or "ddp" in str(cfg.trainer.get("strategy", "")):
        raise ConfigError(
            "pretrain.overrides trains in one process: train the first stage on its own, then start this run "
            "from it with init_from.checkpoint=<its run>/checkpoints/best.ckpt"
        )
    stage = compose_config("config", [str(override) for override in OmegaConf.to_container(overrides, resolve=True)])
    if (stage.get("pretrain") or {}).get("overrides"):
        raise ConfigError("pretrain.overrides: the first stage has a first stage of its own; chain at most two")
    load_plugins(stage.plugins)
    return stage


def stage_directory(output_dir: Path) -> Path:
    return Path(output_dir) / STAGE_DIRECTORY


def starting_from_stage(cfg: DictConfig, output_dir: Path) -> DictConfig:
    """The run's config with init_from.checkpoint at the first stage's best checkpoint: what it
    builds from, what its config.yaml records and what a resumed run is compared with."""
    started = deepcopy(cfg)
    OmegaConf.update(started, "init_from.checkpoint", str(stage_directory(output_dir) / "checkpoints" / "best.ckpt"))
    return started


def finished(stage: DictConfig, output_dir: Path) -> bool:
    """Whether <run dir>/pretrain holds this very stage, trained to its end."""
    directory = stage_directory(output_dir)
    recorded = directory / "config.yaml"
    return (
        (directory / "metrics.json").is_file()
        and (directory / "checkpoints" / "best.ckpt").is_file()
        and recorded.is_file()
        and recorded.read_text(encoding="utf-8") == resolved_config(stage)
    )
