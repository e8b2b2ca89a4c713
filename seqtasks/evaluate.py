"""`python -m seqtasks.evaluate ckpt=<path> [test=...] [decoding=...] [output=<file>]`: score a trained
model on any test data in its task's format, and print its metrics as JSON.

For example a translation model on a new source/reference pair it has never seen:

    python -m seqtasks.evaluate ckpt=run/checkpoints/best.ckpt 'test=[news.de,news.en]'

The data pipeline is rebuilt from the run's config saved in the checkpoint, with `test` replaced
and the checkpoint's own tokenizers; the metrics are printed as JSON (and written to `output`; files a
task draws go beside it, named after it: a classifier's m.confusion_matrix.png for output=m.json).
Every task's data takes `test`: classification `test=<file.tsv>` (names: header
`name<TAB>language`; sst2: `sentence<TAB>label`), tagging `test=<file.conllu>`, translation
`'test=[src,ref]'`, captioning `test=<captions.tsv>` (`image<TAB>caption` lines). A language
model's data has no test split (its validation metrics are in the run's metrics.json): evaluate
refuses it. `output` may not be the checkpoint, a file in an exported model directory or the test
data (symlinks followed).

`ckpt=[a.ckpt,b.ckpt,...]` scores an ensemble (seqtasks/runtime/ensemble.py: translation, classification,
softmax tagging) on the data of its first member's run; its loss is that of the averaged probabilities.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from seqtasks.configuration.compose import command_config
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.registry import DATASETS, constructor_parameters
from seqtasks.errors import USER_ERROR, ConfigError, SeqtasksError
from seqtasks.runtime.atomic import atomic_write
from seqtasks.runtime.build import Inference, decoding_overrides, for_inference, restore_task
from seqtasks.runtime.checkpoint import load_checkpoint, recorded_data_config
from seqtasks.runtime.ensemble import checkpoint_paths, ensemble, members_inference
from seqtasks.runtime.lightning_notices import silence_lightning_notices
from seqtasks.runtime.paths import refuse_overwrite


def from_cwd(path: str) -> str:
    """A file named on the command line, found from the current directory, made absolute: datasets
    read relative paths as their own files under the data root."""
    return str(Path(path).resolve()) if Path(path).exists() else path


def given_test(cfg: DictConfig) -> Any:
    """`test` as plain data: null, a path, or a list of paths."""
    return OmegaConf.to_container(cfg.test) if OmegaConf.is_config(cfg.test) else cfg.test


def check_takes_a_test_split(path: str, checkpoint: dict[str, Any], data_config: dict[str, Any]) -> None:
    """A dataset without a `test` option (a language model's text stream) has no test split, and
    test=... cannot give it one: say so before the model is built."""
    name = data_config["name"]
    # An unknown name (a plugin's dataset, not loaded) fails where the data is built, with the plugin hint.
    if name in DATASETS and "test" not in constructor_parameters(DATASETS.get(name)):
        raise ConfigError(
            f"{path}: evaluate scores models on their data's test split, and dataset '{name}' (task "
            f"'{checkpoint['seqtasks']['task']}') has none and takes no test=...; the run's validation metrics "
            "are in its metrics.json"
        )


def figure_path(output: str | None) -> Path | None:
    """Where the confusion matrix is drawn: beside output=, named after it (None without it)."""
    return Path(output).with_name(f"{Path(output).stem}.confusion_matrix.png") if output else None


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    load_plugins(cfg.plugins)
    inference = Inference.of(cfg)
    paths = checkpoint_paths(cfg.ckpt)
    checkpoints = [load_checkpoint(path) for path in paths]
    checkpoint = checkpoints[0]  # an ensemble's data is rebuilt from its first member's run
    data_config = recorded_data_config(paths[0], checkpoint["seqtasks"].get("config"))
    check_takes_a_test_split(paths[0], checkpoint, data_config)
    members = [
        for_inference(restore_task(member, with_callables=True), path, each)
        for member, path, each in zip(checkpoints, paths, members_inference(inference, paths), strict=True)
    ]
    task = ensemble(members, paths)
    task.strategy = decoding_overrides(cfg, task) or task.strategy
    test = given_test(cfg)
    if test is not None:
        data_config["test"] = [from_cwd(path) for path in test] if isinstance(test, list) else from_cwd(test)
    data = DATASETS.build(data_config, "data")
    if not data.has_test:
        raise ConfigError(f"{paths[0]}: no test data; set test=... (the run had none)")
    # Known only now: the run's own test data (test=null) and a test= under the data root.
    refuse_overwrite({"output": cfg.output}, {"test": data.split_source("test")})
    data.use_tokenizers(task.tokenizers)
    # Files a task draws at test time go next to the metrics file, named after it
    # (m.json -> m.confusion_matrix.png); without output= none is written, so nothing in the
    # working directory (a run's own confusion_matrix.png) is replaced.
    output_dir = Path(cfg.output).parent if cfg.output else Path.cwd()
    if hasattr(task, "confusion_matrix_file"):
        figure = figure_path(cfg.output)
        task.confusion_matrix_file = figure.name if figure else None
    if cfg.output:
        output_dir.mkdir(parents=True, exist_ok=True)
    silence_lightning_notices()
    trainer = L.Trainer(
        accelerator=cfg.device.replace("cuda", "gpu"),
        # The test loop does not run through task.inference(), where bf16 inference autocasts.
        precision="bf16-mixed" if inference.quantize == "bf16" else None,
        devices=1,
        logger=False,
        default_root_dir=str(output_dir),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    results = trainer.test(task, datamodule=data, verbose=False)
    return {**{k: float(v) for k, v in results[0].items()}, **task.report}


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = command_config("evaluate", argv, __doc__)
        outputs = {"output": cfg.output, "figure": figure_path(cfg.output)}
        refuse_overwrite(outputs, {"ckpt": cfg.ckpt, "test": given_test(cfg)})
        metrics = evaluate(cfg)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)
    text = json.dumps(dict(sorted(metrics.items())), indent=2)
    if cfg.output:
        with atomic_write(cfg.output) as f:
            f.write((text + "\n").encode("utf-8"))
        print(f"wrote metrics to {cfg.output}", file=sys.stderr)
    print(text)


if __name__ == "__main__":
    main()
