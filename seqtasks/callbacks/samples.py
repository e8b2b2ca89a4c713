"""Samples as files and as text in the dashboards.

`SampleEvolution` watches samples evolve during training (as in Karpathy's char-rnn write-up):
every N steps it generates text at a few temperatures, appends it to samples.jsonl in the run
directory and sends it to every logger that takes text (TensorBoard, wandb). `write_sample_table`
writes the samples a generation test scored to samples.tsv and shows a few per category."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from seqtasks.configuration.validation import NonNegativeInt, PositiveFloat, PositiveInt
from seqtasks.runtime.dashboards import send_text


def write_sample_table(
    rows: Sequence[tuple[str, str, bool, str]],
    directory: Path,
    loggers: Sequence,
    shown: int,
    temperature: float,
    step: int,
) -> None:
    """rows (category, sample, novel, classifier's label) -> <directory>/samples.tsv; the first
    `shown` samples of every category are printed and sent to the loggers."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "samples.tsv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["category", "sample", "novel", "classified_as"])
        writer.writerows((c, text, int(novel), label) for c, text, novel, label in rows)
    by_category: dict[str, list[str]] = {}
    for category, text, _, _ in rows:
        by_category.setdefault(category, []).append(text)
    text = "\n".join(f"{category}: {', '.join(texts[:shown])}" for category, texts in by_category.items())
    rank_zero_info(f"samples (temperature {temperature}), all in {directory / 'samples.tsv'}:\n{text}")
    send_text(loggers, "test/samples", text, step)


class SampleEvolution(L.Callback):
    def __init__(
        self,
        every_n_steps: NonNegativeInt = 200,
        temperatures: tuple[PositiveFloat, ...] = (0.5, 0.8, 1.0),
        length: PositiveInt = 300,
        prime: str = "\n",
        seed: NonNegativeInt = 0,
        path: str = "samples.jsonl",
    ):
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
            text = task.sample(temperature, self.length, self.prime, generator)
            records.append({"step": step, "temperature": temperature, "text": text})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        for r in records:
            send_text(trainer.loggers, f"samples/temperature_{r['temperature']}", r["text"], step)
