"""Checkpoints kept for averaging (`python -m seqtasks.average ckpt=<run dir> last=N`). With
`checkpoint.keep_every_n_steps`, every that many steps the run is also saved as
checkpoints/step-<step>.ckpt, which later steps do not replace: last.ckpt is overwritten and
best.ckpt is one, so without them a run holds no series of recent weights to average. Each holds
what last.ckpt would at that step, written through the trainer's atomic checkpoint IO.
"""

from __future__ import annotations

import re
from pathlib import Path

import lightning as L

KEPT = re.compile(r"step-(\d+)\.ckpt")


def kept_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step}.ckpt"


def kept_checkpoints(directory: Path) -> list[Path]:
    """The checkpoints kept in a run's checkpoints/ directory, by step, oldest first (by the step
    in the name: step-1000 comes after step-900)."""
    found = [(int(match[1]), path) for path in directory.glob("step-*.ckpt") if (match := KEPT.fullmatch(path.name))]
    return [path for _, path in sorted(found)]


class KeptCheckpoints(L.Callback):
    def __init__(self, directory: Path, every_n_steps: int):
        self.directory = Path(directory)
        self.every_n_steps = every_n_steps
        self._saved_step: int | None = None

    def on_train_batch_end(self, trainer: L.Trainer, task: L.LightningModule, outputs, batch, batch_idx) -> None:
        # Under gradient accumulation several batches end at one step (and before the first, at
        # step 0): each step is written once, after its optimizer update.
        step = trainer.global_step
        if step > 0 and step % self.every_n_steps == 0 and step != self._saved_step:
            trainer.save_checkpoint(kept_path(self.directory, step), weights_only=False)
            self._saved_step = step
