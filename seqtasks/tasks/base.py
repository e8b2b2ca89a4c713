"""What every task shares: optimisation from config, the progress-driven LR schedule, one
`step(batch, stage)` for train/val/test, non-finite-loss handling and checkpoint metadata.

Tasks receive plain config (dicts) and build their own parts through the registries, and call
`save_hyperparameters()`, so `load_from_checkpoint` alone restores a model with its tokenizers.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Timer
from torch import Tensor

from seqtasks.errors import ConfigError, TrainingError

NONFINITE_POLICIES = ("raise", "skip")


class SeqTask(L.LightningModule):
    """Base class of the `tasks` registry."""

    monitor = ("val/loss", "min")  # metric and direction that select the best checkpoint

    def __init__(self, optimizer: dict, scheduler: dict | None = None, nonfinite_loss: str = "raise",
                 plugins: list[str] | None = None):
        super().__init__()
        if nonfinite_loss not in NONFINITE_POLICIES:
            raise ConfigError(f"task.nonfinite_loss must be one of {', '.join(NONFINITE_POLICIES)}, "
                              f"got '{nonfinite_loss}'")
        self.optimizer_config = optimizer
        self.scheduler_config = scheduler
        self.nonfinite_loss = nonfinite_loss
        self.skipped_batches = 0
        self.report: dict[str, str] = {}  # non-numeric results for metrics.json (e.g. sacreBLEU signatures)
        self.run_config: dict | None = None  # the whole run's config, set by run(); saved in checkpoints
        self._step_budget: float | None = None  # optimizer steps the trainer will take (inf: no limit)

    # --- one step for every stage -------------------------------------------------------------
    def step(self, batch: Any, stage: str) -> Tensor:
        """Loss of one batch; also logs the stage's metrics."""
        raise NotImplementedError

    def batch_size_and_tokens(self, batch: Any) -> tuple[int, int]:
        """(examples, tokens) in a training batch: the throughput monitor logs both per second."""
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        loss = self.step(batch, "train")
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True)
        if finite:
            return loss
        if self.nonfinite_loss == "skip":
            # Returning None makes Lightning skip backward and the optimizer step for this batch.
            self.skipped_batches += 1
            self.log("train/skipped_batches", float(self.skipped_batches))
            return None
        raise TrainingError(
            f"non-finite training loss ({loss.item()}) at global step {self.global_step} "
            f"(epoch {self.current_epoch}, batch {batch_idx}); lower the learning rate or clip gradients "
            "(trainer.gradient_clip_val), or set task.nonfinite_loss=skip to skip such batches"
        )

    def validation_step(self, batch, batch_idx):
        return self.step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self.step(batch, "test")

    # --- optimisation ---------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self._step_budget = None

    def configure_optimizers(self):
        optimizer = instantiate(self.optimizer_config, params=self.parameters(), _convert_="all")
        if not self.scheduler_config:
            return optimizer
        schedule = instantiate(self.scheduler_config)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda _: schedule(self.global_step, self.training_progress())
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def training_progress(self) -> float:
        """Share of the run done: the larger of steps/max steps and time/max_time, in [0, 1]."""
        trainer = self._trainer
        if trainer is None:  # used outside a Trainer: no budget to measure against
            return 0.0
        fractions = [0.0]
        if self._step_budget is None:
            self._step_budget = trainer.estimated_stepping_batches
        if math.isfinite(self._step_budget) and self._step_budget > 0:
            fractions.append(self.global_step / self._step_budget)
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        if timer is not None and (remaining := timer.time_remaining("train")) is not None:
            elapsed = timer.time_elapsed("train")
            time_fraction = elapsed / max(elapsed + remaining, 1e-9)
            # Ranks' clocks differ slightly; take rank 0's so every rank uses the same rate.
            fractions.append(trainer.strategy.broadcast(time_fraction) if trainer.world_size > 1 else time_fraction)
        return min(1.0, max(fractions))

    # --- checkpoints ------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The run config lets `seqtasks.evaluate` rebuild the data pipeline with a new test file.
        checkpoint["seqtasks"] = {"task": self.registered_name, "config": self.run_config}
