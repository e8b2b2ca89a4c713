"""The validation metric that selects best.ckpt, stops early and is what sweeps optimise: the
run's `checkpoint.monitor`/`checkpoint.mode` where given, else the task's own. One rule for the
run and for its report (which cannot import `run`: run writes the report); a run's is also checked
against the metrics its task logs, so that a misspelt one fails before training, not at its first
validation."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from seqtasks.configuration.validation import did_you_mean
from seqtasks.errors import ConfigError

MODES = ("max", "min")


def resolve_monitor(
    wanted: str | None, wanted_mode: str | None, default: tuple[str, str] | None
) -> tuple[str, str] | None:
    """checkpoint.monitor, checkpoint.mode (each None where not given) and the task's own (metric,
    mode) -> the (metric, mode) to use; None only when nothing is given and the task is unknown."""
    if wanted_mode is not None and wanted_mode not in MODES:
        raise ConfigError(f"checkpoint.mode={wanted_mode}: choose checkpoint.mode=max or checkpoint.mode=min")
    if wanted is None or (default is not None and wanted == default[0]):
        return None if default is None else (default[0], wanted_mode or default[1])
    if wanted_mode is None:
        raise ConfigError(f"checkpoint.monitor={wanted} needs checkpoint.mode=max or checkpoint.mode=min")
    return str(wanted), wanted_mode


def checked_monitor(
    task_class: type, task_config: dict[str, Any], wanted: str | None, wanted_mode: str | None
) -> tuple[str, str]:
    """A run's (metric, mode) by resolve_monitor, the task's own chosen for its config; ConfigError
    listing the task's validation metrics unless it logs that one (a task that declares none is not checked)."""
    metric, mode = resolve_monitor(wanted, wanted_mode, task_class.default_monitor(task_config))
    declared = task_class.validation_metrics(task_config)
    if declared is None:
        return metric, mode
    names = [f"val/{name}" for name in declared]
    # A family's placeholder ('val/f1/<label>') stands for any one of its metrics.
    if not any(fnmatchcase(metric, re.sub(r"<[^>]+>", "*", name)) for name in names):
        raise ConfigError(
            f"checkpoint.monitor={metric}: task '{task_class.registered_name}' logs no such validation metric as "
            f"configured; choose from {', '.join(names)}{did_you_mean(metric, names)}"
        )
    return metric, mode
