"""`python -m seqtasks.predict ckpt=<path> [input=<file or ->] [output=<file>] [decoding=...]`: use a trained model.

Every task turns input lines into output lines (`predict_lines`), in order:

- translation: one translation per line (an empty line gives an empty line, so the output stays
  aligned with the input); with `decoding.n_best=N` (N > 1) Moses-style n-best lines instead:
  `line ||| hypothesis ||| score`, N per input line, best first;
- classification: `label<TAB>probability`;
- tagging: the tags of each whitespace-tokenised line, or, for CoNLL-U input (`.conllu`, or
  `input_format=conllu`), the same CoNLL-U with the tag column filled;
- generation: categories in, `num_samples` samples per line, tab-separated (no input: every category);
- language models: samples continuing each input line, or `prime` without input:

    python -m seqtasks.predict ckpt=run/checkpoints/best.ckpt input=test.de output=test.hyp decoding=beam
    python -m seqtasks.predict ckpt=run/checkpoints/best.ckpt prime="ROMEO:" decoding=sampling decoding.temperature=0.8

Without `decoding=...` the model decodes as it was trained to (the run's decoding group). Empty
input gives empty output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from seqtasks.atomic import atomic_write
from seqtasks.build import load_task
from seqtasks.config import compose_config
from seqtasks.data.text import read_lines
from seqtasks.errors import USER_ERROR, ConfigError, SeqtasksError
from seqtasks.plugins import load_plugins
from seqtasks.registry import DECODING
from seqtasks.tasks.base import PredictOptions


def predict(cfg: DictConfig) -> tuple[list[str], str]:
    """The results, and the separator that goes between them."""
    load_plugins(cfg.plugins)
    task = load_task(cfg.ckpt).to(cfg.device)
    torch.manual_seed(cfg.seed)  # sampled translations (back-translation) repeat for the same seed
    strategy = (
        DECODING.build(OmegaConf.to_container(cfg.decoding, resolve=True), "decoding") if cfg.get("decoding") else None
    )
    if strategy is not None and task.strategy is None:
        raise ConfigError(f"task '{task.registered_name}' does not decode; drop decoding=...")
    lines = None if cfg.input is None else read_lines(cfg.input, allow_empty=True)
    if lines is None and task.needs_input:
        raise ConfigError(
            f"{cfg.ckpt}: task '{task.registered_name}' reads its input lines: set input=<file> or input=-"
        )
    options = PredictOptions(
        strategy=strategy,
        batch_size=cfg.batch_size,
        num_samples=cfg.num_samples,
        generator=torch.Generator(device=cfg.device).manual_seed(cfg.seed),
        prime=cfg.prime,
        length=cfg.length,
        input_format=cfg.input_format,
        source="<stdin>" if cfg.input == "-" else str(cfg.input),
    )
    return task.predict_lines(lines, options), task.output_separator


def write_results(results: list[str], separator: str, output: str | None) -> None:
    """Every result, then a final line break; nothing at all for no results. A file is written
    atomically: a reader sees the old file or the whole new one."""
    text = separator.join(results) + "\n" if results else ""
    if output:
        with atomic_write(output) as f:
            f.write(text.encode("utf-8"))
        print(f"wrote {len(results)} result(s) to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def check_paths(cfg: DictConfig) -> None:
    """The output must not be the input (it would be replaced by what was read from it)."""
    if cfg.output and cfg.input not in (None, "-") and Path(cfg.output).resolve() == Path(cfg.input).resolve():
        raise ConfigError(f"output={cfg.output} is the input file; write the results somewhere else")


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = compose_config("predict", sys.argv[1:] if argv is None else argv, complete=True)
        check_paths(cfg)
        write_results(*predict(cfg), cfg.output)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)


if __name__ == "__main__":
    main()
