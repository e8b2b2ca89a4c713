"""`python -m seqtasks.export ckpt=<path> output=<dir>`: a trained model as a portable directory
(`seqtasks/model_dir.py`: safetensors weights, config.yaml, tokenizer files) that needs no pickle,
and that `seqtasks.predict` and `seqtasks.evaluate` take as `ckpt=<dir>`."""

from __future__ import annotations

import sys
from pathlib import Path

from seqtasks.checkpoint import load_checkpoint
from seqtasks.config import compose_config
from seqtasks.errors import USER_ERROR, SeqtasksError
from seqtasks.model_dir import export


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = compose_config("export", sys.argv[1:] if argv is None else argv, complete=True)
        written = export(load_checkpoint(cfg.ckpt), Path(cfg.output))
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)
    names = ", ".join(str(path.relative_to(cfg.output)) for path in written)
    print(f"wrote {len(written)} files to {cfg.output}: {names}", file=sys.stderr)


if __name__ == "__main__":
    main()
