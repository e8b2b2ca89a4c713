"""`python -m seqtasks [group=option ...] [key=value ...]`: a thin Hydra shell around run().

Before Hydra runs, the command line is checked (`seqtasks.configuration.compose.check_command_line`), so an
unknown option or a misspelt key fails with the closest valid name. Every user error (those, and
the project's own errors while building or training) ends the process with exit code 2 and one
line on standard error, never a traceback.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from seqtasks.configuration.compose import check_command_line, config_dir
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
    # torch and lightning load after Hydra has parsed the command line
    from seqtasks.run import accept_run, selection_metric, train
    from seqtasks.runtime.run_record import keep_run_record

    # Lightning prints through handlers of its own; send its records to Hydra's (console + cli.log) once.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if HydraConfig.get().mode == RunMode.MULTIRUN and distributed(cfg):
            metrics = job_in_its_own_process(output_dir)
        else:
            accepted = accept_run(cfg, output_dir)
            keep_run_record(cfg, accepted.output_dir)
            metrics = train(accepted)
        metric, _ = selection_metric(cfg)
    except SeqtasksError as error:
        log.error("%s", error)
        sys.exit(getattr(error, "exit_code", USER_ERROR))
    # What --multirun sweepers optimise: the validation metric that selects checkpoints (never a
    # test metric); its direction is the task's `monitor` ('max' for val/bleu and val/acc, 'min'
    # for val/loss), which the sweeper's `direction` must match.
    return metrics.get(metric)


def distributed(cfg: DictConfig) -> bool:
    trainer = cfg.trainer
    return "ddp" in str(trainer.strategy) or int(trainer.num_nodes) > 1 or str(trainer.devices) not in ("1", "auto")


def job_in_its_own_process(output_dir: Path) -> dict:
    """Run this --multirun job as a single run in a child process -> its metrics. Lightning starts a
    DDP run's other ranks by re-running sys.argv, which under --multirun is the whole sweep, and
    ranks started for one job would not start cleanly for the next in the same process; a child per
    job keeps each job's ranks, and its directory, its own."""
    overrides = HydraConfig.get().overrides.task
    command = [sys.executable, "-m", "seqtasks", *overrides, f"hydra.run.dir={output_dir}"]
    code = subprocess.run(command).returncode
    if code != 0:
        raise SeqtasksError(f"job {HydraConfig.get().job.num} ({' '.join(overrides)}) failed with exit code {code}")
    return json.loads((output_dir / "metrics.json").read_text())


def check_resume_has_a_run(arguments: list[str]) -> None:
    """resume=auto continues the run in hydra.run.dir; without one, Hydra would make a new, empty
    directory and the command would silently start a new run instead."""
    multirun = "--multirun" in arguments or "-m" in arguments  # each job resumes its own sweep subdirectory
    if "resume=auto" in arguments and not multirun and not any(a.startswith("hydra.run.dir=") for a in arguments):
        raise SeqtasksError(
            "resume=auto continues the run in hydra.run.dir: add hydra.run.dir=<the run's directory> "
            "(or give resume=<run directory or checkpoint>)"
        )


def main() -> None:
    arguments = sys.argv[1:]
    if not any(argument in HYDRA_FLAGS or argument.split("=")[0] in HYDRA_FLAGS for argument in arguments):
        try:
            check_command_line("config", [a for a in arguments if a not in ("--multirun", "-m")])
            check_resume_has_a_run(arguments)
        except SeqtasksError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(USER_ERROR)
    hydra_main()
