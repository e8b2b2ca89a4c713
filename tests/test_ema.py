"""ema.decay: validation and checkpoints see an exponential moving average of the weights."""

from __future__ import annotations

import lightning as L
import torch
from conftest import TINY_LM

from seqtasks.configuration.registry import DATASETS
from seqtasks.run import run
from seqtasks.runtime.build import build_task, container


def drift_from_initial_weights(compose_config, tiny_text_file, tmp_path, overrides: list[str]) -> float:
    cfg = compose_config(
        [
            *TINY_LM,
            "data=text_file",
            f"data.path={tiny_text_file}",
            "trainer.max_steps=20",
            "task.optimizer.lr=0.05",
            "task.scheduler.warmup_steps=0",
            "logger={}",
            *overrides,
        ]
    )
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # as run() does: the same initial weights
    initial = build_task(cfg, DATASETS.build(container(cfg.data))).state_dict()
    run(cfg, tmp_path)
    saved = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    return max(
        (saved[name].float() - value.float()).abs().max().item()
        for name, value in initial.items()
        if value.is_floating_point()
    )


def test_checkpoint_holds_the_averaged_weights(compose_config, tiny_text_file, tmp_path):
    trained = drift_from_initial_weights(compose_config, tiny_text_file, tmp_path / "plain", [])
    # A decay this close to 1 keeps the average at the first update's weights: one step from the start.
    averaged = drift_from_initial_weights(compose_config, tiny_text_file, tmp_path / "ema", ["ema.decay=0.99999999"])
    assert averaged < 0.3 * trained, (averaged, trained)
