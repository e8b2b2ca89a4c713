"""Learning-rate schedules as a factor of the base rate, given training progress in [0, 1].

Progress is the larger of steps done / step budget and time spent / time budget
(trainer.max_time), so a cosine schedule ends on time whichever limit stops the run first.
"""

from __future__ import annotations

import math


class Constant:
    """The base learning rate, after an optional linear warmup."""

    def __init__(self, warmup_steps: int = 0):
        self.warmup_steps = warmup_steps

    def warmup(self, step: int) -> float:
        return min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0

    def __call__(self, step: int, progress: float) -> float:
        return self.warmup(step)


class WarmupCosine(Constant):
    """Linear warmup, then cosine decay from the base rate to min_lr_ratio * base rate."""

    def __init__(self, warmup_steps: int = 0, min_lr_ratio: float = 0.1):
        super().__init__(warmup_steps)
        self.min_lr_ratio = min_lr_ratio

    def __call__(self, step: int, progress: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return self.warmup(step) * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)


class SlantedTriangular(Constant):
    """ULMFiT's slanted triangular rate (Howard and Ruder 2018): a short linear rise over the first
    cut_frac of training to the base rate, then a long linear fall to base / ratio. It takes
    warmup_steps as every schedule does (default 0: the rise is its warmup), so a recipe that sets
    a warmup can switch to it."""

    def __init__(self, cut_frac: float = 0.1, ratio: float = 32.0, warmup_steps: int = 0):
        super().__init__(warmup_steps)
        self.cut_frac = cut_frac
        self.ratio = ratio

    def __call__(self, step: int, progress: float) -> float:
        progress = min(1.0, progress)
        if progress < self.cut_frac:
            height = progress / self.cut_frac
        else:
            height = 1.0 - (progress - self.cut_frac) / (1.0 - self.cut_frac)
        return self.warmup(step) * (1.0 + height * (self.ratio - 1.0)) / self.ratio
