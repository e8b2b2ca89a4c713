"""Look inside an attention model: where each output token looked in its input, for a few fixed
validation examples, drawn at every validation (the task draws them: `attention_figures`; a
heatmap over source pieces for translation, the image with the attended regions for captioning).
They go to every logger that takes images (TensorBoard, wandb) so their evolution can be read back,
and the latest ones are kept as PNG files in the run directory."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure
from torch import Tensor


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


class AttentionImages(L.Callback):
    def __init__(self, sentences: int = 4, directory: str = "attention"):
        self.sentences = sentences
        self.directory = Path(directory)

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, figure in task.attention_figures(trainer.datamodule, self.sentences).items():
            figure.savefig(self.directory / f"{name}.png", dpi=100)
            for logger in trainer.loggers:
                experiment = getattr(logger, "experiment", None)
                if hasattr(experiment, "add_figure"):  # TensorBoard
                    experiment.add_figure(f"attention/{name}", figure, trainer.global_step, close=False)
                if hasattr(logger, "log_image"):  # wandb
                    logger.log_image(
                        key=f"attention/{name}", images=[str(self.directory / f"{name}.png")], step=trainer.global_step
                    )
