"""Every figure seqtasks draws, in one place: attention heatmaps (translation) and attention over
an image (captioning), a classifier's confusion matrix, gradient flow through time, and a run's
metric curves (report.md). Each function returns a matplotlib Figure (not pyplot: no global
state and no GUI backend, safe in any process or thread); the callers save it or send it to the
dashboards (`seqtasks.runtime.dashboards`)."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

Series = list[tuple[float, float]]  # (step, value) points of one logged metric


def attention_figure(source: list[str], output: list[str], weights: Tensor) -> Figure:
    """Heatmap of weights (T, S): output pieces down the side, source pieces along the top."""
    figure = Figure(figsize=(max(4.0, 0.35 * len(source) + 2), max(3.0, 0.3 * len(output) + 1.5)))
    axes = figure.add_subplot()
    axes.imshow(weights.numpy(), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source)), source, rotation=90, fontsize=8)
    axes.set_yticks(range(len(output)), output, fontsize=8)
    axes.xaxis.tick_top()
    figure.tight_layout()
    return figure


def image_attention_figure(image: np.ndarray, words: list[str], weights: Tensor) -> Figure:
    """The image (H, W, 3), then one panel per output word with its attention weights (T, R) over
    the image's square grid of R cells (row by row) laid over it, brighter where it looked."""
    side = math.isqrt(weights.shape[1])
    panels = len(words) + 1
    columns = min(panels, 6)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(1.8 * columns, 2.0 * rows))
    height, width = image.shape[:2]
    for k in range(panels):
        axes = figure.add_subplot(rows, columns, k + 1)
        axes.imshow(image)
        axes.set_axis_off()
        if k == 0:
            axes.set_title("image", fontsize=9)
            continue
        grid = weights[k - 1].reshape(side, side).numpy()  # (h, w) cells over the image
        extent = (-0.5, width - 0.5, height - 0.5, -0.5)
        axes.imshow(grid, cmap="inferno", alpha=0.65, extent=extent, interpolation="bilinear", vmin=0.0)
        axes.set_title(words[k - 1], fontsize=9)
    figure.tight_layout()
    return figure


def confusion_figure(confusion: Tensor, labels: list[str]) -> Figure:
    """Rows: true class, columns: predicted; each row normalised to 1, counts written in the cells."""
    rates = confusion.float() / confusion.sum(1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.45 * len(labels) + 2)
    figure = Figure(figsize=(size, size))
    axes = figure.add_subplot()
    axes.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, column), count in zip(
        torch.cartesian_prod(torch.arange(len(labels)), torch.arange(len(labels))).tolist(),
        confusion.flatten().tolist(),
        strict=True,
    ):
        if count:
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if rates[row, column] > 0.5 else "black",
            )
    figure.tight_layout()
    return figure


def gradient_flow_figure(curves: dict[str, Tensor], title: str = "Gradient flow through time") -> Figure:
    """One curve per label, each (T,) norms of steps 0..T-1, drawn against the distance T - k on a log
    scale, normalised by the last step's norm so that curves of different models compare."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    for index, (label, norms) in enumerate(curves.items()):
        relative = (norms / norms[-1]).flip(0)  # distance 0 first
        # Ten colours, then the next line style: no two curves look alike.
        style = {"color": f"C{index % 10}", "linestyle": ("-", "--", ":")[index // 10 % 3]}
        axes.semilogy(range(len(relative)), relative.numpy(), label=label, **style)
    axes.set_xlabel("distance T - k (steps back from the loss)")
    axes.set_ylabel("||dL_T/dh_k|| / ||dL_T/dh_T||")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def metric_curves_figure(name: str, series: dict[str, Series], best: dict[str, float], wall_time: Series) -> Figure:
    """One metric's curves (series: key -> [(step, value)]) against the training step and, where the
    log has it, the training time; the best checkpoint's values as dashed lines."""
    panels = [("training step", None)] + ([("training time (s)", wall_time)] if wall_time else [])
    figure = Figure(figsize=(6 * len(panels), 4), layout="constrained")
    for index, (label, clock) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for number, (key, points) in enumerate(series.items()):
            steps = [step for step, _ in points]
            x = steps if clock is None else at_steps(clock, steps)
            y = [value for _, value in points]
            style = {"marker": "o", "markersize": 3} if key.startswith("val/") else {"linewidth": 1}
            axes.plot(x, y, label=key, color=f"C{number}", **style)
        for key, value in best.items():
            number = list(series).index(key) if key in series else len(series)
            axes.axhline(value, color=f"C{number}", linestyle="--", linewidth=1, label=f"{key} (best checkpoint)")
        if clock is None:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel(label)
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(name)
    return figure


def at_steps(clock: Series, steps: list[float]) -> list[float]:
    """The training time at each step, interpolated between the steps that logged it (validation
    rows carry no time of their own)."""
    known = sorted(clock)
    return list(np.interp(steps, [s for s, _ in known], [t for _, t in known]))
