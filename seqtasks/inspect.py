"""`python -m seqtasks.inspect ckpt=<path> input=<text file> [unit=<layer>:<index>] [output=page.html]`:
look inside a language model.

Writes one self-contained HTML page (`output`, which may be neither the input nor the checkpoint)
with the input coloured by a unit's activation and the top-5 next-character guesses under every
character, and prints the units whose activation correlates best with simple properties of the
text (inside quotes, parentheses, position in the line, ...; `pattern=<regex>` adds one), as the
unit search found them:

    python -m seqtasks.inspect ckpt=run/checkpoints/best.ckpt input=heldout.txt output=page.html
    python -m seqtasks.inspect ckpt=run/checkpoints/best.ckpt input=heldout.txt unit=c1:42 'pattern=[A-Z]{2,}'

Give it text the model was not trained on, so a correlation is not the model's memory of it.
"""

from __future__ import annotations

import re
import sys

from omegaconf import DictConfig

from seqtasks.analysis.page import render_page
from seqtasks.analysis.units import search_units, trace_language_model
from seqtasks.configuration.compose import command_config
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.validation import PositiveInt, check_value
from seqtasks.data.text import iter_text
from seqtasks.errors import USER_ERROR, ConfigError, SeqtasksError
from seqtasks.runtime.atomic import atomic_write
from seqtasks.runtime.build import check_device, load_task
from seqtasks.runtime.paths import refuse_overwrite


def first_characters(path: str, count: int) -> str:
    """The first `count` characters of a text file, reading no further (the input may be large)."""
    text, size = [], 0
    for line in iter_text(path):
        text.append(line)
        size += len(line)
        if size >= count:
            break
    return "".join(text)[:count]


def inspect(cfg: DictConfig) -> str:
    """Write the page; returns the unit-search table as text."""
    load_plugins(cfg.plugins)
    task = load_task(cfg.ckpt).to(cfg.device)
    text = first_characters(cfg.input, cfg.length)
    trace = trace_language_model(task, text)
    findings, absent = search_units(trace, cfg.pattern, cfg.top)
    if cfg.unit:
        unit = str(cfg.unit)
    else:  # the unit that follows some property best
        unit = max(findings, key=lambda f: abs(f.r)).unit if findings else "h0:0"
    trace.unit(unit)  # a unit that does not exist fails here, naming the valid ones
    page = render_page(trace, findings, absent, unit, title=f"{cfg.ckpt}: {cfg.input}", show=cfg.show)
    with atomic_write(cfg.output) as f:
        f.write(page.encode("utf-8"))
    lines = [f"{'property':<28} {'unit':<10} {'r':>7}"]
    lines += [f"{f.property:<28} {f.unit:<10} {f.r:+7.3f}" for f in findings]
    lines += [f"{name:<28} (absent from the text)" for name in absent]
    return "\n".join(lines)


def check_options(cfg: DictConfig) -> None:
    """What the command line asks for, checked before the model is loaded."""
    for key in ("top", "length", "show"):
        check_value(key, cfg[key], PositiveInt)
    check_device(cfg.device)
    if cfg.pattern is not None:
        try:
            re.compile(cfg.pattern)
        except re.error as error:
            raise ConfigError(f"pattern={cfg.pattern!r}: not a regular expression ({error})") from None
    if cfg.output == "-":
        raise ConfigError("output=-: the page is a file; give output=<page.html>")
    refuse_overwrite({"output": cfg.output}, {"ckpt": cfg.ckpt, "input": cfg.input})


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = command_config("inspect", argv, __doc__)
        check_options(cfg)
        print(inspect(cfg))
        print(f"wrote {cfg.output}", file=sys.stderr)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)


if __name__ == "__main__":
    main()
