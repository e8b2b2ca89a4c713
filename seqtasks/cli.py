"""`python -m seqtasks [group=option ...] [key=value ...]`: a thin Hydra shell around run()."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from seqtasks.config import config_dir
from seqtasks.errors import SeqtasksError

log = logging.getLogger("seqtasks")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def main(cfg: DictConfig) -> float | None:
    from seqtasks.run import run  # torch and lightning load after Hydra has parsed the command line

    # Lightning prints through handlers of its own; send its records to Hydra's (console + cli.log) once.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    try:
        metrics = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except SeqtasksError as error:
        log.error("%s", error)
        sys.exit(2)
    # The value --multirun sweepers optimise.
    return next(iter(metrics.values()), None)
