"""`last.ckpt`, kept current: written every `every_n_steps` steps and every `every_n_minutes`
minutes of training, after every validation, at the end of training, and at the step where an
interrupt (Ctrl-C, SIGINT) stops the run. With `resume=auto` a run continues from it exactly
(`seqtasks/runtime/resume.py`). Writes go through the trainer's checkpoint IO, which is atomic.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_info


class LastCheckpoint(L.Callback):
    def __init__(self, path: Path, every_n_steps: int | None = None, every_n_minutes: float | None = None):
        self.path = Path(path)
        self.every_n_steps = every_n_steps
        self.every_n_minutes = every_n_minutes
        self.interrupted = False
        self._last_write = time.monotonic()
        self._previous_handler = None

    # --- interrupts -------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        # The first Ctrl-C stops the run at the end of the current step, saves it and validates it;
        # a second one interrupts at once, as usual.
        self._previous_handler = signal.signal(signal.SIGINT, self._on_interrupt)

    def on_fit_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        # After an interrupt the checkpoint of the interrupted step stays: saved now, Lightning's
        # loops would count the unfinished epoch as done and a resume would skip its rest.
        if not self.interrupted:
            self.save(trainer)
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)

    def _on_interrupt(self, signum, frame) -> None:
        self.interrupted = True
        rank_zero_info("interrupted: stopping after this step; the run is saved and validated (Ctrl-C again quits)")
        signal.signal(signal.SIGINT, self._previous_handler or signal.default_int_handler)

    # --- writing ----------------------------------------------------------------------------------
    def save(self, trainer: L.Trainer) -> None:
        # The whole training state (resume needs it), said outright: left unsaid, Lightning logs
        # its default at every save.
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_write = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, task: L.LightningModule, outputs, batch, batch_idx) -> None:
        # Every rank takes the same decisions: any rank interrupted stops all, rank 0's clock rules.
        interrupted = trainer.strategy.reduce_boolean_decision(self.interrupted, all=False)
        by_steps = bool(self.every_n_steps) and trainer.global_step % self.every_n_steps == 0
        by_time = bool(self.every_n_minutes) and time.monotonic() - self._last_write >= 60 * self.every_n_minutes
        if trainer.world_size > 1:
            by_time = trainer.strategy.broadcast(by_time)
        if interrupted or by_steps or by_time:
            self.save(trainer)
        if interrupted:
            self.interrupted = True
            trainer.should_stop = True

    def on_validation_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        # Only validations inside fit: the final validate/test of the best weights must not overwrite it.
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking and not self.interrupted:
            self.save(trainer)
