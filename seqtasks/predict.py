"""`python -m seqtasks.predict ckpt=<path> [input=<file or ->] [output=<file>] [decoding=...]`: use a trained model.

Every task turns input lines into output lines (`predict_lines`), in order:

- translation: one translation per line (an empty line gives an empty line, so the output stays
  aligned with the input); with `decoding.n_best=N` (N > 1) Moses-style n-best lines instead:
  `line ||| hypothesis ||| score`, N per input line, best first;
- classification: `label<TAB>probability`;
- tagging: the tags of each whitespace-tokenised line, or, for CoNLL-U input (`.conllu`, or
  `input_format=conllu`), the same CoNLL-U with the tag column filled;
- captioning: one image path per line (relative to the input file's directory) -> its caption,
  n-best lines as for translation; an image that cannot be read fails naming the input file and line;
- generation: categories in, `num_samples` samples per line, tab-separated (no input: every category);
- language models: samples continuing each input line, or `prime` without input:

    python -m seqtasks.predict ckpt=run/checkpoints/best.ckpt input=test.de output=test.hyp decoding=beam
    python -m seqtasks.predict ckpt=run/checkpoints/best.ckpt prime="ROMEO:" decoding=sampling decoding.temperature=0.8

Without `decoding=...` the model decodes as it was trained to (the run's decoding group). Empty
input gives empty output. No output may be the checkpoint (or lie inside an exported model
directory) or the input, symlinks followed: that is refused before the model is loaded.

Translation with attention can also write where each output piece looked in the source:

    python -m seqtasks.predict ckpt=... input=x.de output=x.hyp attention=x.jsonl attention_images=x_images/

- `attention=<file>`: JSON lines, one object per input line, in order:
  `{"line": n, "source": [pieces], "target": [pieces], "attention": [[...], ...]}`, n counted from
  1; `source` the source pieces the encoder read (truncated to `task.max_length`, no <bos>/<eos>,
  no padding), `target` the output pieces, ending in "<eos>" when the decoder chose to stop (the
  row of the step that stopped; a hypothesis cut at its length limit has none), as in the
  training-time heatmaps; `attention` one row per target piece, one column per source piece, each
  row summing to 1. An empty line (or one that encodes to no piece) gives empty lists. With
  `decoding.n_best=N` the attention is that of the best hypothesis only (the first of its N).
  The weights come from one teacher-forced pass over each batch's chosen hypotheses.
- `attention_images=<dir>`: one heatmap per non-empty input line, `<dir>/sentence_<n>.png` (the
  figure of the training-time `attention/` images), with or without `attention=`.

Both are written atomically, like the output; a task without attention (anything but translation,
or a translation model with head.attention=null) refuses them.

`ckpt=[a.ckpt,b.ckpt,...]` runs an ensemble of models of one task that share their tokenizers:
translation searches once over the members' averaged next-token probabilities, a classifier or a
softmax tagger averages its probabilities (seqtasks/runtime/ensemble.py); the first member's
settings (its decoding, length limits) apply. An ensemble writes no attention.

`backend=onnxruntime` runs the ONNX graphs of a directory exported with `format=onnx` instead of
the PyTorch modules (seqtasks/onnx/backend.py: what runs where); the lines are the same.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from omegaconf import DictConfig

from seqtasks.configuration.compose import command_config
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.validation import PositiveInt, check_value
from seqtasks.data.text import display_name, read_lines
from seqtasks.errors import USER_ERROR, ConfigError, DataError, SeqtasksError
from seqtasks.runtime.atomic import atomic_write
from seqtasks.runtime.build import Inference, decoding_overrides
from seqtasks.runtime.ensemble import checkpoint_paths, load_ensemble
from seqtasks.runtime.paths import refuse_overwrite
from seqtasks.tasks.base import Capability, PredictOptions

if TYPE_CHECKING:
    from seqtasks.tasks.translation import AttentionMap


def predict(cfg: DictConfig) -> tuple[list[str], str]:
    """The results, and the separator that goes between them."""
    results, separator, _ = predict_with_attention(cfg)
    return results, separator


def wants_attention(cfg: DictConfig) -> bool:
    return bool(cfg.get("attention") or cfg.get("attention_images"))


def predict_with_attention(cfg: DictConfig) -> tuple[list[str], str, list[AttentionMap] | None]:
    """The results, their separator, and with attention=/attention_images= each input line's
    attention map (source pieces, output pieces, weights (T, S)); None without."""
    load_plugins(cfg.plugins)
    paths = checkpoint_paths(cfg.ckpt)
    if wants_attention(cfg) and len(paths) > 1:
        raise ConfigError(
            "attention=... and attention_images=... show where one model looked, and each member of an "
            "ensemble looks on its own: give one ckpt, or drop them"
        )
    task = load_ensemble(paths, Inference.of(cfg)).to(cfg.device)
    # Only tasks that translate with attention write it; others fail before any input is read.
    if wants_attention(cfg) and not task.can(Capability.ATTENTION_MAPS):
        raise ConfigError(
            f"task '{task.registered_name}' has no attention to write; drop attention=... and attention_images=..."
        )
    torch.manual_seed(cfg.seed)  # sampled translations (back-translation) repeat for the same seed
    strategy = decoding_overrides(cfg, task)
    lines = None if cfg.input is None else read_lines(cfg.input, allow_empty=True)
    check_line_lengths(cfg.input, lines or [], cfg.max_chars)
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
    if wants_attention(cfg):
        results, maps = task.predict_attention(lines, options)
        return results, task.output_separator, maps
    return task.predict_lines(lines, options), task.output_separator, None


def write_results(results: list[str], separator: str, output: str | None) -> None:
    """Every result, then a final line break; nothing at all for no results. A file is written
    atomically: a reader sees the old file or the whole new one."""
    text = separator.join(results) + "\n" if results else ""
    if output and output != "-":  # -: standard output, as input=- is standard input
        with atomic_write(output) as f:
            f.write(text.encode("utf-8"))
        print(f"wrote {len(results)} result(s) to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def write_attention(maps: list[AttentionMap], path: str) -> None:
    """One JSON object per input line (see the module docstring), atomically. The weights are
    written at full float32 precision, so that each row still sums to 1 when read back."""
    with atomic_write(path) as f:
        for line, (source, target, weights) in enumerate(maps, start=1):
            record = {"line": line, "source": source, "target": target, "attention": weights.tolist()}
            f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"wrote the attention of {len(maps)} line(s) to {path}", file=sys.stderr)


def write_attention_images(maps: list[AttentionMap], directory: str) -> None:
    """sentence_<line>.png per non-empty line (an empty one has nothing to draw), each atomically."""
    from seqtasks.analysis.figures import attention_figure  # matplotlib: only when images are asked for

    written = 0
    for line, (source, target, weights) in enumerate(maps, start=1):
        if not source:
            continue
        figure = attention_figure(source, target, weights)
        with atomic_write(Path(directory) / f"sentence_{line}.png") as f:
            figure.savefig(f, format="png", dpi=100)
        written += 1
    print(f"wrote {written} attention image(s) to {directory}", file=sys.stderr)


def check_line_lengths(source: str, lines: list[str], max_chars: int) -> None:
    """DataError naming the first input line over max_chars: a model reads a line whole, so one
    runaway line (a file without line breaks) would take memory and minutes by the megabyte."""
    for number, line in enumerate(lines, 1):
        if len(line) > max_chars:
            raise DataError(
                display_name(source),
                f"{len(line)} characters, more than max_chars={max_chars}; raise max_chars to read longer lines",
                line=number,
            )


def check_options(cfg: DictConfig) -> None:
    """What the command line asks for, checked before the model is loaded: counts of at least 1,
    and outputs that replace none of the inputs (`refuse_overwrite`)."""
    for key in ("batch_size", "num_samples", "length", "max_chars"):
        check_value(key, cfg[key], PositiveInt)
    check_value("input_format", cfg.input_format, Literal["auto", "conllu", "text"])
    refuse_overwrite(
        {"output": cfg.output, "attention": cfg.attention, "attention_images": cfg.attention_images},
        {"ckpt": cfg.ckpt, "input": cfg.input},
        directories=["attention_images"],
    )


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = command_config("predict", argv, __doc__)
        check_options(cfg)
        results, separator, maps = predict_with_attention(cfg)
        write_results(results, separator, cfg.output)
        if cfg.get("attention"):
            write_attention(maps, cfg.attention)
        if cfg.get("attention_images"):
            write_attention_images(maps, cfg.attention_images)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)


if __name__ == "__main__":
    main()
