"""Look inside an attention model: where each output token looked in its input, for a few fixed
validation examples, drawn at every validation (the task draws them: `attention_figures`; a
heatmap over source pieces for translation, the image with the attended regions for captioning).
They go to every logger that takes images (TensorBoard, wandb) so their evolution can be read back,
and the latest ones are kept as PNG files in the run directory."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from seqtasks.configuration.validation import NonNegativeInt
from seqtasks.runtime.dashboards import send_figure


class AttentionImages(L.Callback):
    def __init__(self, sentences: NonNegativeInt = 4, directory: str = "attention"):
        self.sentences = sentences
        self.directory = Path(directory)

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, figure in task.attention_figures(trainer.datamodule, self.sentences).items():
            path = self.directory / f"{name}.png"
            figure.savefig(path, dpi=100)
            send_figure(trainer.loggers, f"attention/{name}", figure, trainer.global_step, path)
