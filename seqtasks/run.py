"""run(cfg): the whole pipeline, top-down. The CLI (`python -m seqtasks`) is a thin shell around
it, and tests call it directly with composed, shrunken configs.

plugins -> (resume: the run's config and checkpoint) -> check the config -> seed -> trainer -> data
(every split read) -> tokenizers (saved in tokenizers/) -> task -> fit -> validate (and test) the
best checkpoint -> metrics.json -> report.md
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
)
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_only
from omegaconf import DictConfig

from seqtasks.callbacks import (
    AttentionImages,
    AveragedWeights,
    KeptCheckpoints,
    LastCheckpoint,
    SampleEvolution,
    Telemetry,
    TrainingThroughput,
)
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.registry import DATASETS, TASKS
from seqtasks.errors import ConfigError, Interrupted, TrainingError
from seqtasks.runtime.allocator import keep_freed_memory
from seqtasks.runtime.build import build_task, check_config, container, resumed_task
from seqtasks.runtime.checkpoint import AtomicCheckpointIO, keep_model_only, load_checkpoint
from seqtasks.runtime.lightning_notices import quiet_lightning, silence_lightning_notices
from seqtasks.runtime.monitor import checked_monitor
from seqtasks.runtime.precision import resolve_precision
from seqtasks.runtime.report import write_report
from seqtasks.runtime.resume import (
    LogPosition,
    RandomStates,
    check_resumable,
    check_training_state,
    checkpoint_to_resume,
    refuse_overwrite,
    remove_partial_writes,
    run_directory_of,
)
from seqtasks.runtime.run_options import check_run_options
from seqtasks.runtime.run_record import resolved_config
from seqtasks.runtime.stages import finished, first_stage, stage_directory, starting_from_stage
from seqtasks.tasks.base import Capability


def examples_in(batch: Any) -> int:
    return len(batch)


def tokens_in(batch: Any) -> int:
    return batch.num_tokens


def build_trainer(cfg: DictConfig, task_class: type, output_dir: Path) -> L.Trainer:
    silence_lightning_notices()
    metric, mode = chosen_monitor(cfg, task_class)
    checkpoints = output_dir / "checkpoints"
    callbacks: list[L.Callback] = [
        # best.ckpt is chosen after validations only: a run that stops before its first
        # validation is validated and saved by final_metrics instead of failing.
        ModelCheckpoint(
            dirpath=checkpoints,
            filename="best",
            monitor=metric,
            mode=mode,
            save_top_k=cfg.checkpoint.save_top_k,
            save_last=False,
            auto_insert_metric_name=False,
            enable_version_counter=False,
            save_on_train_epoch_end=False,
        ),
        RandomStates(),
        LogPosition(),
    ]
    if cfg.checkpoint.save_last:
        callbacks.append(
            LastCheckpoint(checkpoints / "last.ckpt", cfg.checkpoint.every_n_steps, cfg.checkpoint.every_n_minutes)
        )
    if cfg.checkpoint.keep_every_n_steps:
        callbacks.append(KeptCheckpoints(checkpoints, cfg.checkpoint.keep_every_n_steps))
    if cfg.ema.decay:
        # Validation, test and checkpoints see the averaged weights: smoother than any single step's.
        callbacks.append(AveragedWeights(decay=cfg.ema.decay))
    if cfg.early_stopping.patience:
        callbacks.append(
            EarlyStopping(
                monitor=metric, mode=mode, patience=cfg.early_stopping.patience, check_on_train_epoch_end=False
            )
        )
    if task_class.can(Capability.SAMPLE) and cfg.samples.every_n_steps > 0:
        callbacks.append(SampleEvolution(**container(cfg.samples), path=str(output_dir / "samples.jsonl")))
    if task_class.can(Capability.ATTENTION_FIGURES) and cfg.attention_images.sentences > 0:
        callbacks.append(AttentionImages(**container(cfg.attention_images), directory=str(output_dir / "attention")))
    loggers = [instantiate(options, save_dir=str(output_dir)) for options in (cfg.get("logger") or {}).values()]
    for logger in loggers:
        logger.log_hyperparams(container(cfg))
    if loggers:
        callbacks.append(Telemetry(**container(cfg.telemetry), directory=str(output_dir)))
        callbacks.append(LearningRateMonitor(logging_interval="step"))
        # train/samples_per_sec (examples/s) and train/items_per_sec (tokens/s), over a window of steps.
        callbacks.append(TrainingThroughput(batch_size_fn=examples_in, length_fn=tokens_in))
    return trainer_of(cfg, callbacks=callbacks, logger=loggers or False, default_root_dir=str(output_dir))


def trainer_of(cfg: DictConfig, **parts: Any) -> L.Trainer:
    """The Trainer of cfg.trainer with `parts` (callbacks, loggers, directory); ConfigError when
    Lightning refuses an option."""
    options = container(cfg.trainer)
    options["precision"] = resolve_precision(options.get("precision"), str(options.get("accelerator", "auto")))
    try:
        return instantiate(options, plugins=[AtomicCheckpointIO()], **parts)
    except Exception as error:  # Lightning's MisconfigurationException, ValueError, TypeError
        raise ConfigError(f"trainer: {error.__cause__ or error}") from None


def check_trainer(cfg: DictConfig) -> None:
    """Lightning's own checks of cfg.trainer (devices, precision, max_time, ...), made before a run
    is accepted by building a bare Trainer and dropping it, its device summary unlogged."""
    with quiet_lightning():
        trainer_of(cfg, logger=False, enable_checkpointing=False, callbacks=[])


def final_metrics(trainer: L.Trainer, task: L.LightningModule, data: L.LightningDataModule) -> dict[str, Any]:
    """Validation (and test, where the data has it) metrics of the best checkpoint, plus the
    task's non-numeric results (task.report, e.g. sacreBLEU signatures)."""
    metrics: dict[str, float] = {}
    ckpt_path = str(best_checkpoint_path(trainer))
    if trainer.checkpoint_callback.best_model_path:
        for result in trainer.validate(task, datamodule=data, ckpt_path=ckpt_path, verbose=False):
            metrics.update(result)
    else:
        # Stopped (max_steps) before any validation: score the final weights and keep them as best.
        for result in trainer.validate(task, datamodule=data, verbose=False):
            metrics.update(result)
        trainer.save_checkpoint(ckpt_path, weights_only=False)
    if data.has_test:
        for result in trainer.test(task, datamodule=data, ckpt_path=ckpt_path, verbose=False):
            metrics.update(result)
    return dict(sorted({**{k: float(v) for k, v in metrics.items()}, **task.report}.items()))


def best_checkpoint_path(trainer: L.Trainer) -> Path:
    """best.ckpt: the checkpoint validation chose, or where the final weights go when none was."""
    checkpoint = trainer.checkpoint_callback
    fallback = Path(checkpoint.dirpath) / f"{checkpoint.filename}{checkpoint.FILE_EXTENSION}"
    return Path(checkpoint.best_model_path or fallback)


@rank_zero_only
def write_outputs(output_dir: Path, metrics: dict[str, Any]) -> None:
    """metrics.json; a non-finite value is written as a string ("nan", "inf"), never dropped."""
    output_dir.mkdir(parents=True, exist_ok=True)
    plain = {k: v if not isinstance(v, float) or math.isfinite(v) else str(v) for k, v in metrics.items()}
    (output_dir / "metrics.json").write_text(json.dumps(plain, indent=2) + "\n")
    rank_zero_info(f"metrics: {json.dumps(plain)}\nrun directory: {output_dir}")


@rank_zero_only
def write_config(cfg: DictConfig, output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(resolved_config(cfg))


@dataclass
class AcceptedRun:
    """A run that passed every check and may start: its config (the command line's, also when it
    resumes), its directory, and for a resumed run the checkpoint it continues from."""

    cfg: DictConfig
    output_dir: Path
    task_class: type
    resume: Path | None = None
    checkpoint: dict[str, Any] | None = None
    stage: DictConfig | None = None  # the first stage (pretrain.overrides), trained into <run dir>/pretrain


def accept_run(cfg: DictConfig, output_dir: str | Path) -> AcceptedRun:
    """Every check that may refuse a run, made before anything in its directory changes: plugins,
    the first stage (pretrain.overrides), the checkpoint a resume continues (its recorded config
    compared with this one), the directory (a fresh run into another run's is refused), the whole
    config. What a killed checkpoint write left behind is removed last, once the run is accepted."""
    output_dir = Path(output_dir)
    check_run_options(container(cfg))
    load_plugins(cfg.plugins)
    resume = checkpoint_to_resume(cfg.get("resume"), output_dir)
    checkpoint = None
    if resume is not None:
        output_dir = run_directory_of(resume)
    stage = first_stage(cfg)
    if stage is not None:
        check_config(stage)
        cfg = starting_from_stage(cfg, output_dir)  # as the run recorded it, when it resumes
    if resume is not None:
        checkpoint = load_checkpoint(resume)
        check_training_state(resume, checkpoint)
        check_resumable(container(cfg), checkpoint["seqtasks"].get("config"))
    refuse_overwrite(output_dir, resuming=resume is not None)
    task_class = check_config(cfg)
    chosen_monitor(cfg, task_class)  # one the task logs: not a failure at the first validation
    check_trainer(cfg)
    remove_partial_writes(output_dir)
    if resume is not None:
        rank_zero_info(f"resuming {output_dir} from {resume} (step {checkpoint.get('global_step')})")
    return AcceptedRun(cfg, output_dir, task_class, resume, checkpoint, stage)


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """Train and evaluate as `cfg` says; write config.yaml, checkpoints/, logs and metrics.json
    under output_dir (the resumed checkpoint's run directory with resume=<path>); return the metrics."""
    return train(accept_run(cfg, output_dir))


def train(accepted: AcceptedRun) -> dict[str, Any]:
    """Run an accepted run (`accept_run`) to its end -> its metrics."""
    cfg, output_dir, task_class, checkpoint = (
        accepted.cfg,
        accepted.output_dir,
        accepted.task_class,
        accepted.checkpoint,
    )
    if cfg.keep_freed_memory:
        keep_freed_memory()
    if accepted.stage is not None and checkpoint is None:
        train_first_stage(accepted.stage, output_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = build_trainer(cfg, task_class, output_dir)
    data = DATASETS.build(container(cfg.data), "data")
    data.read_all()
    if checkpoint is None:
        task = build_task(cfg, data, output_dir / "tokenizers")
    else:  # built as a new run's, from this run's own config; fit() then restores the weights and the rest
        task = resumed_task(cfg, data, checkpoint)
    task.run_config = container(cfg)
    write_config(cfg, output_dir)
    trainer.fit(task, datamodule=data, ckpt_path=accepted.resume)
    metrics = final_metrics(trainer, task, data)
    # Scored, best.ckpt sheds the optimizer's and callbacks' states: last.ckpt resumes the run.
    rank_zero_only(keep_model_only)(best_checkpoint_path(trainer))
    write_outputs(output_dir, metrics)
    # report.md before the errors below, so that diverged and interrupted runs have one too; it never raises.
    csv_logs = [Path(logger.log_dir) / "metrics.csv" for logger in trainer.loggers if isinstance(logger, CSVLogger)]
    rank_zero_only(write_report)(output_dir, cfg.task.name, chosen_monitor(cfg, task_class), csv_logs)
    nonfinite = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if nonfinite:
        raise TrainingError(
            f"the run ended with non-finite metrics ({', '.join(f'{k}={metrics[k]}' for k in nonfinite)}; written to "
            f"{output_dir / 'metrics.json'}): it diverged; lower the learning rate or clip gradients"
        )
    if any(isinstance(c, LastCheckpoint) and c.interrupted for c in trainer.callbacks):
        raise Interrupted(
            f"interrupted at step {trainer.global_step}: saved as {output_dir / 'checkpoints' / 'last.ckpt'}"
            f" and validated (metrics.json); continue with resume=auto hydra.run.dir={output_dir}"
        )
    return metrics


def train_first_stage(stage: DictConfig, output_dir: Path) -> None:
    """Train the first stage into <run dir>/pretrain, unless that very stage has finished there."""
    directory = stage_directory(output_dir)
    if finished(stage, output_dir):
        rank_zero_info(f"pretrain: the first stage in {directory} has finished; starting from its best checkpoint")
        return
    rank_zero_info(f"pretrain: training the first stage into {directory}")
    run(stage, directory)


def selection_metric(cfg: DictConfig) -> tuple[str, str]:
    """The metric that selects checkpoints, and its direction ('min' or 'max'): what sweeps optimise."""
    load_plugins(cfg.plugins)
    return chosen_monitor(cfg, TASKS.get(cfg.task.name, path="task"))


def chosen_monitor(cfg: DictConfig, task_class: type) -> tuple[str, str]:
    """checkpoint.monitor and checkpoint.mode where given, else the task's own for its config; one the task logs."""
    return checked_monitor(task_class, container(cfg.task), cfg.checkpoint.get("monitor"), cfg.checkpoint.get("mode"))
