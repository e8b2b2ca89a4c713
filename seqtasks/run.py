"""run(cfg): the whole pipeline, top-down. The CLI (`python -m seqtasks`) is a thin shell around
it, and tests call it directly with composed, shrunken configs.

plugins -> seed -> data -> tokenizers (saved in tokenizers/) -> task -> callbacks, loggers -> trainer -> fit
        -> validate (and test) the best checkpoint -> metrics.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import (
    EarlyStopping,
    EMAWeightAveraging,
    LearningRateMonitor,
    ModelCheckpoint,
    ThroughputMonitor,
)
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_only
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from seqtasks.callbacks import AttentionImages, SampleEvolution
from seqtasks.checkpoint import AtomicCheckpointIO
from seqtasks.errors import ConfigError
from seqtasks.plugins import load_plugins
from seqtasks.registry import DATASETS, TASKS


def container(config: Any) -> Any:
    """Plain, resolved dicts for constructors; a mandatory key left at ??? fails here, by name."""
    if not isinstance(config, DictConfig):
        return config
    try:
        return OmegaConf.to_container(config, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        raise ConfigError(f"config key '{error.full_key}' must be set, e.g. {error.full_key}=...") from None


def build_task(cfg: DictConfig, data: L.LightningDataModule, tokenizer_dir: Path | None = None) -> L.LightningModule:
    """Sizes flow forward: tokenizers are fitted on the training data, then handed to the task.
    With tokenizer_dir, their files (e.g. sentencepiece models) are written there as well."""
    tokenizers = data.build_tokenizers(container(cfg.tokenizer))
    if tokenizer_dir is not None:
        save_tokenizers(tokenizers, tokenizer_dir)
    return TASKS.build(
        container(cfg.task),
        tokenizers={side: tokenizer.state() for side, tokenizer in tokenizers.items()},
        encoder=container(cfg.encoder),
        head=container(cfg.head),
        plugins=list(cfg.plugins),
    )


@rank_zero_only
def save_tokenizers(tokenizers: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for side, tokenizer in tokenizers.items():
        tokenizer.save(directory, side)


def build_trainer(cfg: DictConfig, task: L.LightningModule, output_dir: Path) -> L.Trainer:
    metric, mode = task.monitor
    callbacks = [
        ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best", monitor=metric, mode=mode,
                        save_top_k=cfg.checkpoint.save_top_k, save_last=cfg.checkpoint.save_last,
                        auto_insert_metric_name=False, enable_version_counter=False),
    ]
    if cfg.ema.decay:
        # Validation, test and checkpoints see the averaged weights: smoother than any single step's.
        callbacks.append(EMAWeightAveraging(decay=cfg.ema.decay))
    if cfg.early_stopping.patience:
        callbacks.append(EarlyStopping(monitor=metric, mode=mode, patience=cfg.early_stopping.patience))
    if hasattr(task, "generate") and cfg.samples.every_n_steps > 0:
        callbacks.append(SampleEvolution(**container(cfg.samples), path=str(output_dir / "samples.jsonl")))
    if hasattr(task, "attention_map") and cfg.attention_images.sentences > 0:
        callbacks.append(AttentionImages(**container(cfg.attention_images), directory=str(output_dir / "attention")))
    loggers = [instantiate(options, save_dir=str(output_dir)) for options in (cfg.logger or {}).values()]
    for logger in loggers:
        logger.log_hyperparams(container(cfg))
    if loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))
        # train/samples_per_sec (examples/s) and train/items_per_sec (tokens/s), over a window of steps.
        callbacks.append(ThroughputMonitor(batch_size_fn=lambda batch: task.batch_size_and_tokens(batch)[0],
                                           length_fn=lambda batch: task.batch_size_and_tokens(batch)[1]))
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                       plugins=[AtomicCheckpointIO()], default_root_dir=str(output_dir))


def final_metrics(trainer: L.Trainer, task: L.LightningModule, data: L.LightningDataModule) -> dict[str, Any]:
    """Validation (and test, where the data has it) metrics of the best checkpoint, plus the
    task's non-numeric results (task.report, e.g. sacreBLEU signatures)."""
    checkpoint = trainer.checkpoint_callback
    metrics: dict[str, float] = {}
    if checkpoint.best_model_path:
        ckpt_path = checkpoint.best_model_path
        for result in trainer.validate(task, datamodule=data, ckpt_path=ckpt_path, verbose=False):
            metrics.update(result)
    else:
        # Stopped (max_steps) before any validation: score the final weights and keep them as best.
        for result in trainer.validate(task, datamodule=data, verbose=False):
            metrics.update(result)
        ckpt_path = str(Path(checkpoint.dirpath) / f"{checkpoint.filename}{checkpoint.FILE_EXTENSION}")
        trainer.save_checkpoint(ckpt_path)
    if getattr(data, "has_test", is_overridden("test_dataloader", data, L.LightningDataModule)):
        for result in trainer.test(task, datamodule=data, ckpt_path=ckpt_path, verbose=False):
            metrics.update(result)
    scores = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
    return dict(sorted({**scores, **task.report}.items()))


@rank_zero_only
def write_outputs(cfg: DictConfig, output_dir: Path, metrics: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    rank_zero_info(f"metrics: {json.dumps(metrics)}\nrun directory: {output_dir}")


@rank_zero_only
def write_config(cfg: DictConfig, output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """Train and evaluate as `cfg` says; write config.yaml, checkpoints/, logs and metrics.json
    under output_dir; return the metrics."""
    output_dir = Path(output_dir)
    load_plugins(cfg.plugins)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data = DATASETS.build(container(cfg.data))
    task = build_task(cfg, data, output_dir / "tokenizers")
    task.run_config = container(cfg)
    trainer = build_trainer(cfg, task, output_dir)
    write_config(cfg, output_dir)
    trainer.fit(task, datamodule=data)
    metrics = final_metrics(trainer, task, data)
    write_outputs(cfg, output_dir, metrics)
    return metrics
