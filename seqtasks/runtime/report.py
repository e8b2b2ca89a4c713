"""report.md in a run directory: what was run, the final metrics, learning curves and links to the
figures the run drew. `run()` writes it at the end of every run (interrupted runs included), on
rank 0; `write_report(run_dir)` redraws it for any run directory.

The curves come from the CSV logger's metrics.csv, which a resumed run continues, so they cover the
whole run. Drawing is best effort: a figure that fails is named in the report and logged as a
warning, and report.md itself is written atomically, so a run never fails for its report."""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from seqtasks.analysis.figures import Series, metric_curves_figure
from seqtasks.runtime.atomic import atomic_write
from seqtasks.runtime.monitor import resolve_monitor

log = logging.getLogger(__name__)

REPORT = "report.md"
FIGURES = "report"  # the report's own PNGs, beside report.md
WALL_TIME = "time/train_seconds"  # seconds of training so far, logged with training steps (telemetry callback)
SAMPLE_CHARACTERS = 400  # of each last sample shown in the report (samples.jsonl has them all)


def write_report(
    run_dir: str | Path,
    task: str | None = None,
    monitor: tuple[str, str] | None = None,
    csv_logs: Sequence[str | Path] | None = None,
) -> Path | None:
    """Write <run_dir>/report.md (and its curves under <run_dir>/report/) -> its path, or None if
    it could not be written (logged as a warning, never raised).

    task: the task's name (default: config.yaml's task.name); monitor: the metric that selects
    checkpoints and its direction (default: the task's `monitor`); csv_logs: the CSV loggers'
    metrics.csv files (default: every <run_dir>/*/version_*/metrics.csv)."""
    run_dir = Path(run_dir)
    try:
        config = _read_yaml(run_dir / "config.yaml") or {}
        task = task or (config.get("task") or {}).get("name")
        chosen = config.get("checkpoint") or {}
        if monitor is None:  # the run's checkpoint.monitor, by the rule the run used
            default = _monitor_of(task, config.get("task") or {}, config.get("plugins") or [])
            monitor = resolve_monitor(chosen.get("monitor"), chosen.get("mode"), default)
        if csv_logs is None:
            csv_logs = sorted(run_dir.glob("*/version_*/metrics.csv"))
        text = _report(run_dir, task, monitor, [Path(p) for p in csv_logs])
        path = run_dir / REPORT
        with atomic_write(path) as f:
            f.write(text.encode("utf-8"))
    except Exception as error:  # a report is a convenience: it must never end a run that trained
        log.warning("could not write %s: %s: %s", run_dir / REPORT, type(error).__name__, error)
        return None
    log.info("report: %s", path)
    return path


def _report(run_dir: Path, task: str | None, monitor: tuple[str, str] | None, csv_logs: list[Path]) -> str:
    lines = [f"# Run report: {task or 'unknown task'}", ""]
    if monitor:
        lines += [f"Task `{task}`; checkpoints are selected by `{monitor[0]}` ({monitor[1]}).", ""]
    lines += _command(run_dir)
    metrics = _read_json(run_dir / "metrics.json")
    lines += _metrics_table(metrics)
    lines += _curves(run_dir, csv_logs, metrics, monitor[0] if monitor else None)
    lines += _figures(run_dir)
    lines += _samples(run_dir / "samples.jsonl")
    return "\n".join(lines).rstrip() + "\n"


# --- what was run -------------------------------------------------------------------------------
def _command(run_dir: Path) -> list[str]:
    lines = ["## Command", ""]
    overrides = _read_yaml(run_dir / ".hydra" / "overrides.yaml")
    if isinstance(overrides, list):
        lines += [_fenced(shlex.join(["python", "-m", "seqtasks", *map(str, overrides)]), "bash")]
    else:
        # In-process runs (tests, notebooks) and hydra.output_subdir=null record no command line.
        lines += ["No command line recorded (no `.hydra/overrides.yaml`); the resolved config is in `config.yaml`."]
    return [*lines, ""]


# --- final metrics ------------------------------------------------------------------------------
def _metrics_table(metrics: dict[str, Any] | None) -> list[str]:
    lines = ["## Final metrics", ""]
    if not metrics:
        return [*lines, "No `metrics.json` in the run directory.", ""]
    lines += ["Of the best checkpoint, from [`metrics.json`](metrics.json).", ""]
    by_name: dict[str, dict[str, Any]] = {}
    other: dict[str, Any] = {}
    for key, value in metrics.items():
        stage, _, name = key.partition("/")
        if stage in ("val", "test") and name:
            by_name.setdefault(name, {})[stage] = value
        else:
            other[key] = value
    if by_name:
        lines += ["| metric | val | test |", "| --- | --- | --- |"]
        lines += [
            f"| {_cell(name)} | {_value(values.get('val'))} | {_value(values.get('test'))} |"
            for name, values in by_name.items()
        ]
        lines.append("")
    if other:
        lines += ["| key | value |", "| --- | --- |"]
        lines += [f"| {_cell(key)} | {_value(value)} |" for key, value in other.items()]
        lines.append("")
    return lines


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _cell(f"`{value}`")  # e.g. a sacreBLEU signature, or "nan" as metrics.json writes it
    return _cell(format(value, ".6g"))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# --- learning curves ----------------------------------------------------------------------------
def _curves(run_dir: Path, csv_logs: list[Path], metrics: dict[str, Any] | None, monitor: str | None) -> list[str]:
    lines = ["## Learning curves", ""]
    existing = [path for path in csv_logs if path.is_file()]
    if not existing:
        return [*lines, "No CSV log in this run (no `csv` logger configured): no learning curves to draw.", ""]
    figures = [("loss", ["train/loss", "val/loss"])]
    if monitor and monitor != "val/loss":
        name = monitor.partition("/")[2] or monitor
        figures.append((name, [f"train/{name}", monitor]))
    lines += [f"From [`{_relative(existing[0], run_dir)}`]({_link(existing[0], run_dir)}).", ""]
    try:
        columns = _read_csv(existing[0], {WALL_TIME, *(key for _, keys in figures for key in keys)})
    except (OSError, csv.Error, UnicodeDecodeError) as error:  # the metrics and links are still worth a report
        log.warning("could not read %s: %s: %s", existing[0], type(error).__name__, error)
        return [*lines, f"Could not read the CSV log ({type(error).__name__}: {_cell(str(error))}).", ""]
    wall_time = columns.get(WALL_TIME, [])
    if wall_time:
        lines += [f"Against training steps and against training time (`{WALL_TIME}`).", ""]
    else:
        lines += [f"Against training steps only: the CSV log has no `{WALL_TIME}` column.", ""]
    lines += [
        "Validation points are the validations during training; the dashed line is the final "
        "metric of the best checkpoint (`metrics.json`).",
        "",
    ]
    for name, keys in figures:
        series = {key: _without_final_validation(columns, key, metrics) for key in keys}
        series = {key: points for key, points in series.items() if points}
        best = {key: metrics[key] for key in keys if metrics and _is_number(metrics.get(key))}
        if not series and not best:
            lines += [f"No `{'`, `'.join(keys)}` in the CSV log: no {name} curve.", ""]
            continue
        path = run_dir / FIGURES / f"{_file_name(name)}.png"
        try:
            _draw(path, name, series, best, wall_time)
        except Exception as error:  # a figure that cannot be drawn leaves the rest of the report
            log.warning("could not draw %s: %s: %s", path, type(error).__name__, error)
            lines += [f"Could not draw the {name} curve ({type(error).__name__}: {_cell(str(error))}).", ""]
            continue
        lines += [f"![{name}]({_link(path, run_dir)})", ""]
    return lines


def _read_csv(path: Path, keys: set[str]) -> dict[str, Series]:
    """metrics.csv -> {key: [(step, value), ...]} of the cells that hold a number, for these keys
    only (a long run logs many columns: gradients, gates, throughput). Lightning's CSV writer puts
    each log call in a row of its own, with empty cells for the keys it did not log."""
    columns: dict[str, Series] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            step = _number(row.get("step"))
            if step is None:
                continue
            for key in keys:
                value = _number(row.get(key))
                if value is not None:
                    columns.setdefault(key, []).append((step, value))
    return columns


def _without_final_validation(columns: dict[str, Series], key: str, metrics: dict[str, Any] | None) -> Series:
    """A metric's points, less a validation metric's last one when metrics.json has it: after
    training, run() validates the best checkpoint (or the final weights) once more, and that row is
    not a point of the curve but the final metric, drawn as a line of its own. (A resume cuts the
    log back to its checkpoint, so earlier attempts' final validations are not in it.)"""
    points = columns.get(key, [])
    return points[:-1] if key.startswith("val/") and metrics and key in metrics else points


# --- the run's own figures and samples ----------------------------------------------------------
def _draw(path: Path, name: str, series: dict[str, Series], best: dict[str, float], wall_time: Series) -> None:
    with atomic_write(path) as f:  # readers (a dashboard, a browser) never see half a PNG
        metric_curves_figure(name, series, best, wall_time).savefig(f, format="png", dpi=100)


def _figures(run_dir: Path) -> list[str]:
    found = sorted((run_dir / "attention").glob("*.png"))
    found += [path for path in [run_dir / "confusion_matrix.png"] if path.is_file()]
    # Gradient-flow figures may be drawn into the run directory or a folder of it (not a deep walk:
    # a run directory can hold thousands of logger files).
    gradient_flow = [*run_dir.glob("gradient_flow*.png"), *run_dir.glob("*/gradient_flow*.png")]
    found += sorted(p for p in gradient_flow if p.parent.name != FIGURES)
    found += [path for path in (run_dir / "samples.jsonl", run_dir / "samples.tsv") if path.is_file()]
    found += [path for path in (run_dir / "checkpoints" / "best.ckpt", run_dir / "config.yaml") if path.is_file()]
    lines = ["## Files of the run", ""]
    if not found:
        return [*lines, "None.", ""]
    return [*lines, *(f"- [{_relative(p, run_dir)}]({_link(p, run_dir)})" for p in found), ""]


def _samples(path: Path) -> list[str]:
    """The last samples of samples.jsonl ({"step", "temperature", "text"} per line), one per temperature."""
    if not path.is_file():
        return []
    records = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
        if not records:
            return []
        last = max(record["step"] for record in records)
        latest = {r["temperature"]: r["text"] for r in records if r["step"] == last}
    except (ValueError, KeyError, TypeError) as error:
        log.warning("could not read %s: %s: %s", path, type(error).__name__, error)
        return ["## Samples", "", f"Could not read `samples.jsonl` ({type(error).__name__}).", ""]
    lines = ["## Samples", "", f"The last samples, at step {last} (all in [`samples.jsonl`](samples.jsonl)).", ""]
    for temperature, text in sorted(latest.items()):
        shown = text if len(text) <= SAMPLE_CHARACTERS else text[:SAMPLE_CHARACTERS] + "…"
        lines += [f"Temperature {temperature}:", "", _fenced(shown), ""]
    return lines


# --- helpers ------------------------------------------------------------------------------------
def _monitor_of(task: str | None, task_config: dict[str, Any], plugins: list[str]) -> tuple[str, str] | None:
    if not task:
        return None
    try:
        from seqtasks.configuration.plugins import load_plugins
        from seqtasks.configuration.registry import TASKS

        load_plugins(plugins)  # the run's own, so that a plugin task is known too
        return TASKS.get(task, path="task").default_monitor(task_config)
    except Exception:  # a plugin task that is not loaded here: no main-metric curve, the rest stays
        return None


def _fenced(text: str, language: str = "") -> str:
    # A fence longer than any run of backticks in the text, so that samples cannot end it early.
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}{language}\n{text}\n{fence}"


def _relative(path: Path, run_dir: Path) -> str:
    return path.relative_to(run_dir).as_posix() if path.is_relative_to(run_dir) else str(path)


def _link(path: Path, run_dir: Path) -> str:
    return quote(_relative(path, run_dir))


def _file_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric)


def _number(cell: Any) -> float | None:
    try:
        return float(cell)
    except (TypeError, ValueError):
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
