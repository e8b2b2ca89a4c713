"""`python -m seqtasks.average ckpt=[a.ckpt,b.ckpt,...] output=<file>`: one checkpoint whose weights
are the elementwise mean of the checkpoints' (seqtasks/runtime/averaging.py), often better than any
of them; `ckpt=<run dir> last=N` averages the N most recent that a run trained with
`checkpoint.keep_every_n_steps` kept in checkpoints/ (seqtasks/callbacks/kept.py).

The output is a model, which predict, evaluate, export and init_from take, not a training state:
resume refuses it. It may not be one of the inputs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import ListConfig

from seqtasks.callbacks.kept import kept_checkpoints
from seqtasks.configuration.compose import command_config
from seqtasks.errors import USER_ERROR, ConfigError, SeqtasksError
from seqtasks.runtime.averaging import average_checkpoints
from seqtasks.runtime.checkpoint import write_checkpoint
from seqtasks.runtime.ensemble import checkpoint_paths
from seqtasks.runtime.paths import refuse_overwrite


def inputs(ckpt: Any, last: Any) -> list[str]:
    """The checkpoints that ckpt= (and last=) name: two or more, none twice."""
    if last is not None:
        return latest_kept(ckpt, last)
    paths = checkpoint_paths(ckpt)
    if len(paths) == 1 and (Path(paths[0]) / "checkpoints").is_dir():
        raise ConfigError(
            f"ckpt={paths[0]} is a run directory: say how many of its kept checkpoints to average, last=N"
        )
    if len(paths) < 2:
        raise ConfigError(f"ckpt={ckpt}: expected two or more checkpoints to average, e.g. ckpt=[a.ckpt,b.ckpt]")
    resolved = [Path(path).resolve() for path in paths]
    for index, path in enumerate(resolved):
        if path in resolved[:index]:
            raise ConfigError(f"ckpt names {paths[index]} twice; expected each checkpoint once")
    return paths


def latest_kept(run: Any, last: Any) -> list[str]:
    """The `last` most recent checkpoints kept in the run directory `run`."""
    if isinstance(last, bool) or not isinstance(last, int) or last < 2:
        raise ConfigError(f"last={last}: expected a number of checkpoints to average, 2 or more")
    if isinstance(run, ListConfig) or not (Path(str(run)) / "checkpoints").is_dir():
        raise ConfigError(f"last={last} takes a run directory (one holding checkpoints/) as ckpt=, not ckpt={run}")
    kept = kept_checkpoints(Path(str(run)) / "checkpoints")
    if len(kept) < last:
        raise ConfigError(
            f"last={last}: {run}/checkpoints keeps {len(kept)} checkpoints (step-<step>.ckpt); train with "
            "checkpoint.keep_every_n_steps=... to keep one every that many steps"
        )
    return [str(path) for path in kept[-last:]]


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = command_config("average", argv, __doc__)
        paths = inputs(cfg.ckpt, cfg.last)
        refuse_overwrite({"output": cfg.output}, {"ckpt": paths})
        write_checkpoint(average_checkpoints([Path(path) for path in paths]), cfg.output)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)
    print(f"wrote {cfg.output}: the mean of {len(paths)} checkpoints ({', '.join(paths)})", file=sys.stderr)


if __name__ == "__main__":
    main()
