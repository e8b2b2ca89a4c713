"""`ema.decay`: an exponential moving average of the weights, seen by validation, test and the
saved checkpoints alike.

Lightning's EMAWeightAveraging swaps the average in for validation and saves it as a checkpoint's
`state_dict` (what evaluate, predict and serve load), with the current weights beside it. A test
after fit restores that checkpoint through the callback, which puts the current weights back into
the model, and it swaps nothing for test: the run's test metrics were those of weights no saved
model holds, and `evaluate` of the same checkpoint disagreed with them. Test now swaps like
validation.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging


class AveragedWeights(EMAWeightAveraging):
    def on_test_epoch_start(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        self.on_validation_epoch_start(trainer, task)  # the average in, the current weights kept aside

    def on_test_epoch_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        self.on_validation_epoch_end(trainer, task)  # and back
