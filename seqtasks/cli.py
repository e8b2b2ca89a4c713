"""`python -m seqtasks [group=option ...] [key=value ...]`: a thin Hydra shell around run().

Before Hydra runs, the command line is checked (`seqtasks.config.check_command_line`), so an
unknown option or a misspelt key fails with the closest valid name. Every user error (those, and
the project's own errors while building or training) ends the process with exit code 2 and one
line on standard error, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from seqtasks.config import check_command_line, config_dir
from seqtasks.errors import USER_ERROR, SeqtasksError

log = logging.getLogger("seqtasks")

# Arguments after which Hydra prints or does something other than a run (their own values follow them).
HYDRA_FLAGS = (
    "--help",
    "-h",
    "--hydra-help",
    "--cfg",
    "-c",
    "--info",
    "-i",
    "--resolve",
    "--package",
    "-p",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--shell-completion",
    "-sc",
    "--version",
    "--experimental-rerun",
)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    from seqtasks.run import run, selection_metric  # torch and lightning load after Hydra has parsed the command line

    # Lightning prints through handlers of its own; send its records to Hydra's (console + cli.log) once.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    try:
        metrics = run(cfg, Path(HydraConfig.get().runtime.output_dir))
        metric, _ = selection_metric(cfg)
    except SeqtasksError as error:
        log.error("%s", error)
        sys.exit(USER_ERROR)
    # What --multirun sweepers optimise: the validation metric that selects checkpoints (never a
    # test metric); its direction is the task's `monitor` ('max' for val/bleu and val/acc, 'min'
    # for val/loss), which the sweeper's `direction` must match.
    return metrics.get(metric)


def main() -> None:
    arguments = sys.argv[1:]
    if not any(argument in HYDRA_FLAGS or argument.split("=")[0] in HYDRA_FLAGS for argument in arguments):
        try:
            check_command_line("config", [a for a in arguments if a not in ("--multirun", "-m")])
        except SeqtasksError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(USER_ERROR)
    hydra_main()
