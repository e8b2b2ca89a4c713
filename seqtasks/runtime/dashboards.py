"""Sending what a run draws or writes to every logger that can show it. One place knows which
logger takes what (TensorBoard: add_figure, add_text; wandb: log_image, log_text; every logger:
log_metrics), so a figure or a text reaches every dashboard, never only some."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure


def send_figure(loggers: Sequence, tag: str, figure: Figure, step: int, path: Path | None = None) -> None:
    """TensorBoard draws the figure itself; wandb takes its PNG, so `path` (where it was saved)."""
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_figure"):  # TensorBoard
            experiment.add_figure(tag, figure, step, close=False)
        if hasattr(logger, "log_image") and path is not None:  # wandb
            logger.log_image(key=tag, images=[str(path)], step=step)


def send_text(loggers: Sequence, tag: str, text: str, step: int) -> None:
    """TensorBoard shows text as markdown (a line break needs two spaces before it); wandb as a table cell."""
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_text"):  # TensorBoard
            experiment.add_text(tag, text.replace("\n", "  \n"), step)
        if hasattr(logger, "log_text"):  # wandb
            logger.log_text(key=tag, columns=["text"], data=[[text]], step=step)


def send_scalars(loggers: Sequence, metrics: dict[str, float], step: int) -> None:
    """Straight to every logger at `step`, each row saved at once as Lightning does (a killed run
    keeps it). Not LightningModule.log, which writes only at its own logging steps."""
    if not metrics:
        return
    for logger in loggers:
        logger.log_metrics(metrics, step=step)
        logger.save()
