"""Logger factories that need more than a `_target_` (the rest are Lightning's own classes)."""

from __future__ import annotations

import csv
import hashlib
import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc(os.environ.get("NETRC", Path.home() / ".netrc")).hosts
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def wandb_logger(**options):
    """WandbLogger that runs offline when no API key is configured, so it never prompts or blocks
    (sync later with `wandb sync <run dir>/wandb/offline-run-*`). Its run id is derived from the run
    directory, so a resumed run (resume=auto) continues the same wandb run."""
    from lightning.pytorch.loggers import WandbLogger

    if options.get("offline") is None:
        options["offline"] = os.environ.get("WANDB_MODE") == "offline" or not wandb_has_credentials()
    if options.get("id") is None and options.get("save_dir"):
        options["id"] = hashlib.sha1(str(Path(options["save_dir"]).resolve()).encode()).hexdigest()[:16]
        options.setdefault("resume", "allow")
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(**options)


class ContinuedCSVWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics.csv is continued, not deleted: a
    resumed run's log holds every step. `rows`/`keep_rows` let the resume drop what the crashed run
    logged after its last checkpoint (it is logged again)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])

    def rows(self) -> int:
        self.save()
        if not self._fs.isfile(self.metrics_file_path):
            return 0
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            return max(sum(1 for _ in csv.reader(file)) - 1, 0)

    def keep_rows(self, count: int, before_step: int) -> None:
        """Keep the first `count` rows and the rows right after them whose step is below
        `before_step`: a checkpoint written at the end of a training step precedes the logging of
        that step, which the resumed run (starting at `before_step`) does not log again."""
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            header, *rows = list(csv.reader(file))
        step = header.index("step") if "step" in header else None
        while step is not None and count < len(rows) and _below(rows[count][step], before_step):
            count += 1
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            csv.writer(file).writerows([header, *rows[:count]])


def _below(step: str, bound: int) -> bool:
    try:
        return float(step) < bound
    except ValueError:
        return False


class ContinuedCSVLogger(CSVLogger):
    """CSVLogger whose metrics.csv survives a resume (see ContinuedCSVWriter)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuedCSVWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuedCSVWriter(log_dir=self.log_dir)
        return self._experiment
