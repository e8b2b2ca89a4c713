"""What a command-line run keeps in its directory besides its outputs: Hydra's record of the run
(`.hydra/config.yaml`, `hydra.yaml`, `overrides.yaml`) and the console log (`<job name>.log`, e.g.
`cli.log`). Hydra would write both before the run is checked; conf/config.yaml turns that off
(`hydra.output_subdir: null`, the `seqtasks` job logging) and the CLI calls `keep_run_record` once
`seqtasks.run.accept_run` has accepted the run, so that a refused command (a fresh run into an
existing run's directory, a resume whose config differs) changes nothing there."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from seqtasks.runtime.atomic import atomic_write

RECORD = ".hydra"  # where Hydra itself keeps it (its default output_subdir)


def resolved_config(cfg: DictConfig) -> str:
    """A run directory's config.yaml: the config the run was built from, every interpolation resolved."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def keep_run_record(cfg: DictConfig, output_dir: Path) -> None:
    """Write Hydra's record of this run into output_dir and send the console log to its file too."""
    hydra = HydraConfig.get()
    record = {
        "config.yaml": cfg,
        "hydra.yaml": OmegaConf.create({"hydra": hydra}),
        "overrides.yaml": hydra.overrides.task,
    }
    for name, node in record.items():
        with atomic_write(output_dir / RECORD / name) as f:
            f.write(OmegaConf.to_yaml(node).encode("utf-8"))
    root = logging.getLogger()
    handler = logging.FileHandler(output_dir / f"{hydra.job.name}.log", encoding="utf-8")
    handler.setFormatter(next((h.formatter for h in root.handlers if h.formatter), None))  # the console's
    root.addHandler(handler)
