"""`python -m seqtasks.export ckpt=<path> output=<dir>`: a trained model as a portable directory
(`seqtasks/runtime/model_dir.py`: safetensors weights, config.yaml, tokenizer files) that needs no pickle,
and that `seqtasks.predict` and `seqtasks.evaluate` take as `ckpt=<dir>`. With `format=onnx` the
directory also holds the model's ONNX graphs (seqtasks/onnx/, needs the `onnx` extra) under onnx/.

The output directory may not be the checkpoint, lie inside an exported one, or hold it: export
into a run directory (or its checkpoints/) would mix the model with the run's own config.yaml and
tokenizers/, and replace them. Nor may it hold files at all: a model directory is written whole,
and another model's files left beside it would mix with it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from seqtasks.configuration.compose import command_config
from seqtasks.errors import USER_ERROR, ConfigError, SeqtasksError
from seqtasks.runtime.build import restore_task
from seqtasks.runtime.checkpoint import load_checkpoint
from seqtasks.runtime.model_dir import export
from seqtasks.runtime.paths import refuse_overwrite

FORMATS = ("safetensors", "onnx")


def onnx_graphs(checkpoint: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The checkpoint's model as ONNX graphs and their manifest (seqtasks/onnx/export.py)."""
    try:
        from seqtasks.onnx.export import export_onnx
    except ImportError as error:
        raise ConfigError(f"format=onnx needs the onnx extra: pip install 'seqtasks[onnx]' ({error})") from None
    return export_onnx(restore_task(checkpoint))


def refuse_filled(directory: Path) -> None:
    """A model directory is written whole into a new or empty directory: into one that holds files,
    another model's tokenizers or ONNX graphs would stay beside this one's."""
    held = sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []
    if held:
        shown = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "")
        raise ConfigError(
            f"output={directory} is not empty ({shown}); export writes a whole model directory: give a new or empty one"
        )


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = command_config("export", argv, __doc__)
        refuse_overwrite({"output": cfg.output}, {"ckpt": cfg.ckpt}, directories=["output"])
        refuse_filled(Path(cfg.output))
        if cfg.format not in FORMATS:
            raise ConfigError(f"format={cfg.format}: expected one of {', '.join(FORMATS)}")
        checkpoint = load_checkpoint(cfg.ckpt)
        written = export(checkpoint, Path(cfg.output), onnx_graphs(checkpoint) if cfg.format == "onnx" else None)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)
    names = ", ".join(str(path.relative_to(cfg.output)) for path in written)
    print(f"wrote {len(written)} files to {cfg.output}: {names}", file=sys.stderr)


if __name__ == "__main__":
    main()
