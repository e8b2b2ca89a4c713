"""Watch samples evolve during training (as in Karpathy's char-rnn write-up): every N steps,
generate text at a few temperatures, append it to samples.jsonl in the run directory and send it
to every logger that takes text (TensorBoard, wandb)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from seqtasks.decoding.sampling import Sampling


class SampleEvolution(L.Callback):
    def __init__(self, every_n_steps: int = 200, temperatures: tuple[float, ...] = (0.5, 0.8, 1.0),
                 length: int = 300, prime: str = "\n", seed: int = 0, path: str = "samples.jsonl"):
        self.every_n_steps = every_n_steps
        self.temperatures = list(temperatures)
        self.length = length
        self.prime = prime
        self.seed = seed
        self.path = Path(path)

    @rank_zero_only
    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.every_n_steps <= 0 or step % self.every_n_steps != 0:
            return
        records = []
        for temperature in self.temperatures:
            # The same seed every time, so differences between steps come from the model alone.
            generator = torch.Generator(device=task.device).manual_seed(self.seed)
            text = task.generate(self.prime, self.length, Sampling(temperature), generator=generator)[0]
            records.append({"step": step, "temperature": temperature, "text": text})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            for r in records:
                if hasattr(experiment, "add_text"):  # TensorBoard
                    experiment.add_text(f"samples/temperature_{r['temperature']}", f"```\n{r['text']}\n```", step)
            if hasattr(logger, "log_text"):  # wandb
                logger.log_text(key="samples", columns=["step", "temperature", "text"],
                                data=[[r["step"], r["temperature"], r["text"]] for r in records], step=step)
