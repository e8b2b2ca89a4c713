"""`python -m seqtasks.evaluate ckpt=<path> [test=...] [decoding=...] [output=<file>]`: score a trained
model on any test data in its task's format, e.g. a translation model on a new source/reference
pair it has never seen:

    python -m seqtasks.evaluate ckpt=run/checkpoints/best.ckpt 'test=[news.de,news.en]'

The data pipeline is rebuilt from the run's config saved in the checkpoint, with `test` replaced
and the checkpoint's own tokenizers; the metrics are printed as JSON (and written to `output`; files a
task draws, such as a classifier's confusion_matrix.png, go beside it). Every task's data takes `test`:
classification `test=<file.tsv>` (names: header `name<TAB>language`; sst2: `sentence<TAB>label`),
tagging `test=<file.conllu>`, translation `'test=[src,ref]'`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightning as L
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from seqtasks.checkpoint import load_checkpoint, task_from_checkpoint
from seqtasks.config import config_dir
from seqtasks.errors import ConfigError, SeqtasksError
from seqtasks.registry import DATASETS, DECODING
from seqtasks.tokenizers.base import Tokenizer


def from_cwd(path: str) -> str:
    """A file named on the command line, found from the current directory, made absolute: datasets
    read relative paths as their own files under the data root."""
    return str(Path(path).resolve()) if Path(path).exists() else path


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    checkpoint = load_checkpoint(cfg.ckpt)
    run_config = checkpoint["seqtasks"].get("config")
    if not run_config:
        raise ConfigError(f"{cfg.ckpt}: the checkpoint carries no run config to rebuild its data from")
    task = task_from_checkpoint(checkpoint)
    if cfg.get("decoding"):
        if not hasattr(task, "strategy"):
            raise ConfigError(f"task '{task.registered_name}' does not decode; drop decoding=...")
        task.strategy = DECODING.build(OmegaConf.to_container(cfg.decoding, resolve=True))
    data_config = dict(run_config["data"])
    if cfg.test is not None:
        test = OmegaConf.to_container(cfg.test) if OmegaConf.is_config(cfg.test) else cfg.test
        data_config["test"] = [from_cwd(path) for path in test] if isinstance(test, list) else from_cwd(test)
    data = DATASETS.build(data_config)
    data.use_tokenizers({side: Tokenizer.from_state(state) for side, state in task.hparams.tokenizers.items()})
    # Files a task draws at test time (confusion_matrix.png) go next to the metrics file.
    output_dir = Path(cfg.output).parent if cfg.output else Path.cwd()
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer = L.Trainer(accelerator=cfg.device.replace("cuda", "gpu"), devices=1, logger=False,
                        default_root_dir=str(output_dir),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    results = trainer.test(task, datamodule=data, verbose=False)
    if not results or not results[0]:
        raise ConfigError(f"{cfg.ckpt}: no test data; set test=... (the run had none)")
    return {**{k: float(v) for k, v in results[0].items()}, **task.report}


def main(argv: list[str] | None = None) -> None:
    overrides = sys.argv[1:] if argv is None else argv
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("evaluate", overrides=overrides)
        metrics = evaluate(cfg)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    text = json.dumps(dict(sorted(metrics.items())), indent=2)
    if cfg.output:
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.output).write_text(text + "\n")
        print(f"wrote metrics to {cfg.output}", file=sys.stderr)
    print(text)


if __name__ == "__main__":
    main()
