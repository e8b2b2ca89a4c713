"""ema.decay: validation and checkpoints see an exponential moving average of the weights."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from conftest import TINY_LM, train

from seqtasks import evaluate
from seqtasks.callbacks.kept import kept_path
from seqtasks.configuration.compose import compose_config as compose_overrides
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
            "logger=[]",
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


def test_the_runs_test_metrics_are_those_of_the_saved_averaged_weights(tmp_path):
    """The run's test loop and `evaluate` of its best checkpoint score the same (averaged) weights."""
    names = tmp_path / "data" / "names" / "by_language"
    names.mkdir(parents=True)
    (names / "Russian.txt").write_text("".join(f"Ivanov{i}\n" for i in range(40)))
    (names / "Spanish.txt").write_text("".join(f"Garcia{i}ez\n" for i in range(40)))
    metrics = train(
        "experiment=names_classify",
        f"data.root={tmp_path / 'data'}",
        "encoder.hidden_size=8",
        "encoder.num_layers=1",
        "task.embedding_dim=8",
        "task.optimizer.lr=0.05",
        "trainer.max_steps=12",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        "early_stopping.patience=null",
        "ema.decay=0.7",
        "checkpoint.keep_every_n_steps=1",
        "logger=[]",
        run_dir=tmp_path / "run",
    )
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    # best.ckpt keeps the average alone; the whole state of its step, kept beside it, has both.
    step = torch.load(best, map_location="cpu", weights_only=True)["global_step"]
    saved = torch.load(kept_path(best.parent, step), map_location="cpu", weights_only=True)
    assert any(  # the average and the current weights differ, so the test below can tell them apart
        not torch.equal(saved["state_dict"][name], saved["current_model_state"][name]) for name in saved["state_dict"]
    )
    evaluated = evaluate.evaluate(
        compose_overrides("evaluate", [f"ckpt={best}", f"output={tmp_path / 'e.json'}"], True)
    )
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)
