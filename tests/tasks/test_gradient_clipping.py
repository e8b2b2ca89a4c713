"""Gradient clipping with a fused optimizer under bf16 mixed precision, which Lightning refuses (it
guards against fp16's scaled gradients): one SGD step at rate 1 moves the weights by exactly the
clipped gradient, whose norm is the clip value, as with the unfused optimizer."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_overrides, run

from seqtasks.runtime.checkpoint import load_checkpoint

CLIP = 1e-3


def one_step(data_root, run_dir, *overrides: str) -> dict[str, torch.Tensor]:
    args = [
        "experiment=names_classify", f"data.root={data_root}", "encoder.hidden_size=8", "task.ngram_buckets=64",
        "optimizer=sgd", "task.optimizer.lr=1", "scheduler=constant", "task.scheduler.warmup_steps=0",
        "task.dropout=0", "encoder.dropout=0", "head.dropout=0", "trainer.max_steps=1", "trainer.max_time=null",
        "trainer.limit_val_batches=0", "trainer.enable_progress_bar=false", "early_stopping.patience=null",
        "trainer.precision=bf16-mixed", f"trainer.gradient_clip_val={CLIP}", *overrides,
    ]  # fmt: skip
    run(compose_overrides("config", args), run_dir)
    return load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.mark.parametrize("fused", [True, False])
def test_a_step_moves_the_weights_by_the_clipped_gradient(tiny_classifier, tmp_path, fused):
    data_root = tiny_classifier / "data"
    start = one_step(data_root, tmp_path / "start", "task.optimizer.lr=0")
    stepped = one_step(data_root, tmp_path / "stepped", f"task.optimizer.fused={fused}")
    moved = torch.cat([(stepped[name] - start[name]).flatten() for name in start])
    assert moved.norm().item() == pytest.approx(CLIP, rel=1e-3)
