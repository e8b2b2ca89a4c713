"""Continuing a run exactly, and keeping run directories safe.

`resume=auto` continues from `<run dir>/checkpoints/last.ckpt` (and starts afresh when there is
none yet); `resume=<path>` from that checkpoint (or that run directory's last.ckpt), in the
checkpoint's own run directory. Run it with the command line that started the run: that command
line's config is compared with the one the checkpoint recorded, and may differ only in the trainer,
loggers and checkpointing (more steps, another device count); any other difference is an error
naming the keys. The run is built from the command line's config, never from what the checkpoint
holds (a checkpoint is data: a `_target_` planted in it is never instantiated). Lightning
restores the weights, optimizer, schedule, callbacks (best checkpoint, early stopping, EMA, the
time spent against max_time) and the loops; seqtasks adds the random states (`RandomStates`), the
sampler's place within the epoch (`seqtasks.data.base.ResumableLoader`), for language models the
carried hidden state, and the CSV log's length (`LogPosition`), so the log reads as one run's.

An existing run directory is never overwritten: a new run into a directory that holds checkpoints
is refused before anything in it changes, and temporary files a killed write left behind are
removed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from seqtasks.errors import ConfigError

CHANGEABLE = ("trainer", "logger", "checkpoint", "resume", "samples", "attention_images")  # resuming may change these


def checkpoint_to_resume(resume: str | None, output_dir: Path) -> Path | None:
    """The checkpoint a run continues from, or None for a fresh run."""
    if resume is None:
        return None
    if resume == "auto":
        last = output_dir / "checkpoints" / "last.ckpt"
        if not last.is_file():
            rank_zero_info(f"resume=auto: {last} does not exist yet; starting the run afresh")
            return None
        return last
    path = Path(resume).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise ConfigError(f"resume={resume}: no checkpoint at {path}")
    return path


def check_training_state(path: Path, checkpoint: dict[str, Any]) -> None:
    """A checkpoint without the optimizer's and the loops' states (an average of checkpoints,
    `seqtasks.average`) holds a model but no point of a run to continue from."""
    if "optimizer_states" not in checkpoint or "loops" not in checkpoint:
        raise ConfigError(
            f"resume={path}: the checkpoint holds a model but no training state (optimizer, loops) to continue; "
            f"start a new run from its weights with init_from.checkpoint={path}"
        )


def run_directory_of(checkpoint: Path) -> Path:
    """The run directory a checkpoint belongs to (<run dir>/checkpoints/<name>.ckpt)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def refuse_overwrite(output_dir: Path, resuming: bool) -> None:
    """Refuse a fresh run into a directory that holds another run's checkpoints."""
    checkpoints = output_dir / "checkpoints"
    existing = sorted(p.name for p in checkpoints.glob("*.ckpt")) if checkpoints.is_dir() else []
    if existing and not resuming:
        raise ConfigError(
            f"{output_dir} already holds a run ({', '.join(existing)} in checkpoints/): continue it with "
            "resume=auto, or choose another directory (hydra.run.dir=...)"
        )


def remove_partial_writes(output_dir: Path) -> None:
    """Remove what killed checkpoint writes left (`.<name>.*.partial`)."""
    checkpoints = output_dir / "checkpoints"
    for stale in sorted(checkpoints.glob(".*.partial")) if checkpoints.is_dir() else []:
        stale.unlink(missing_ok=True)
        rank_zero_info(f"removed {stale}, left by a checkpoint write that was killed")


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b': value} for every leaf of nested dicts (keys made strings: a checkpoint's may be anything)."""
    if not isinstance(config, dict):
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{prefix}{key}." if isinstance(value, dict) and value else f"{prefix}{key}"))
    return flat


def check_resumable(command_line: dict[str, Any], trained: Any) -> None:
    """A resumed run continues with its command line's composed config, which must be the run's own
    (`trained`, the config the checkpoint recorded) but for the trainer, logger and checkpoint
    settings; any other difference is an error listing the keys. The checkpoint's config is only
    compared, never used: what the run builds comes from its own command line."""
    now, before = flatten(command_line), flatten(trained)
    differ = sorted(
        key for key in now.keys() | before.keys() if now.get(key) != before.get(key) and not key.startswith(CHANGEABLE)
    )
    if differ:
        shown = ", ".join(f"{key}={now.get(key)!r} (the run: {before.get(key)!r})" for key in differ[:5])
        more = f" and {len(differ) - 5} more" if len(differ) > 5 else ""
        raise ConfigError(
            f"resume: this command differs from the run it continues in {shown}{more}; give the run's own "
            "command line (its config.yaml) plus resume=...; only trainer, logger and checkpoint settings may change"
        )


class RandomStates(L.Callback):
    """The random generators' states (Python, NumPy, torch's CPU and CUDA generators) go into every
    checkpoint and come back when a run resumes from it, so dropout and word dropout draw the same
    numbers as in an uninterrupted run. (Under DDP they are rank 0's: every rank is seeded alike.)"""

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = random.getstate()
        kind, keys, position, has_gauss, cached = np.random.get_state()
        return {
            "python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), position, has_gauss, cached],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class LogPosition(L.Callback):
    """Every checkpoint records how many rows each continuable log (`seqtasks.runtime.loggers.ContinuedCSVLogger`)
    held; resuming from it cuts the log back to that length, so the rows the crashed run logged after
    its last checkpoint, which the resumed run logs again, appear once."""

    def on_save_checkpoint(self, trainer: L.Trainer, task: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        writers = filter(None, map(_continued, trainer.loggers))
        checkpoint["log_rows"] = {str(writer.metrics_file_path): writer.rows() for writer in writers}

    def on_load_checkpoint(self, trainer: L.Trainer, task: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != TrainerFn.FITTING:  # validating the best checkpoint after training
            return
        # A resume may add loggers: those the checkpoint did not record are left alone.
        recorded = checkpoint.get("log_rows", {})
        for writer in filter(None, map(_continued, trainer.loggers)):
            if str(writer.metrics_file_path) in recorded:
                writer.keep_rows(recorded[str(writer.metrics_file_path)], before_step=checkpoint["global_step"])


def _continued(logger):
    """The logger's writer when it can be continued and this is rank 0, else None."""
    writer = logger.experiment
    return writer if hasattr(writer, "keep_rows") and hasattr(writer, "metrics_file_path") else None
