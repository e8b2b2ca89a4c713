"""Look inside an attention model: heatmaps of where each output token looked in the source, for a
few fixed validation sentences, drawn at every validation. They go to every logger that takes
images (TensorBoard, wandb) so their evolution can be read back, and the latest ones are kept as
PNG files in the run directory."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import lightning as L
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


class AttentionImages(L.Callback):
    def __init__(self, sentences: int = 4, directory: str = "attention"):
        self.sentences = sentences
        self.directory = Path(directory)

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        # The first sentences of the validation file: the same ones every time, so images compare.
        sources = [source for source, _ in islice(trainer.datamodule.usable("val"), self.sentences)]
        for i, source in enumerate(sources):
            figure = attention_figure(*task.attention_map(source))
            figure.savefig(self.directory / f"sentence_{i}.png", dpi=100)
            for logger in trainer.loggers:
                experiment = getattr(logger, "experiment", None)
                if hasattr(experiment, "add_figure"):  # TensorBoard
                    experiment.add_figure(f"attention/sentence_{i}", figure, trainer.global_step, close=False)
                if hasattr(logger, "log_image"):  # wandb
                    logger.log_image(
                        key=f"attention/sentence_{i}",
                        images=[str(self.directory / f"sentence_{i}.png")],
                        step=trainer.global_step,
                    )
