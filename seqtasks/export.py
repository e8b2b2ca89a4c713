"""`python -m seqtasks.export ckpt=<path> output=<dir>`: a trained model as a portable directory
(`seqtasks/runtime/model_dir.py`: safetensors weights, config.yaml, tokenizer files) that needs no pickle,
and that `seqtasks.predict` and `seqtasks.evaluate` take as `ckpt=<dir>`.

The output directory may not be the checkpoint, lie inside an exported one, or hold it: export
into a run directory (or its checkpoints/) would mix the model with the run's own config.yaml and
tokenizers/, and replace them."""

from __future__ import annotations

import sys
from pathlib import Path

from seqtasks.configuration.compose import command_config
from seqtasks.errors import USER_ERROR, SeqtasksError
from seqtasks.runtime.checkpoint import load_checkpoint
from seqtasks.runtime.model_dir import export
from seqtasks.runtime.paths import refuse_overwrite


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = command_config("export", argv, __doc__)
        refuse_overwrite({"output": cfg.output}, {"ckpt": cfg.ckpt}, directories=["output"])
        written = export(load_checkpoint(cfg.ckpt), Path(cfg.output))
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)
    names = ", ".join(str(path.relative_to(cfg.output)) for path in written)
    print(f"wrote {len(written)} files to {cfg.output}: {names}", file=sys.stderr)


if __name__ == "__main__":
    main()
