"""The validation metric that selects best.ckpt, stops early and is what sweeps optimise: the
run's `checkpoint.monitor`/`checkpoint.mode` where given, else the task's own. One rule for the
run and for its report (which cannot import `run`: run writes the report)."""

from __future__ import annotations

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
