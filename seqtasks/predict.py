"""`python -m seqtasks.predict ckpt=<path> [input=<file or ->] [output=<file>] [decoding=...]`: use a trained model.

Models that map input lines to output lines (translation) read one example per line from `input`
and write exactly one result per line, in order: an empty input line gives an empty output line,
so the output stays aligned with the input. With `decoding=beam decoding.n_best=N` (N > 1) they
write Moses-style n-best lines instead: `line ||| hypothesis ||| score`, N per input line, best
first. Classification writes `label<TAB>probability`; tagging writes the tags of each whitespace-
tokenised line, or, for CoNLL-U input (`.conllu`, or `input_format=conllu`), the same CoNLL-U with
the tag column filled; generation reads categories and writes `num_samples` samples per line,
tab-separated. Language models generate from a prime instead:

    python -m seqtasks.predict ckpt=run/checkpoints/best.ckpt input=test.de output=test.hyp decoding=beam
    python -m seqtasks.predict ckpt=run/checkpoints/best.ckpt prime="ROMEO:" decoding=sampling decoding.temperature=0.8

Without `decoding=...` the model decodes as it was trained to (translation: the run's decoding
group, beam search by default; language models: sampling at temperature 1).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from seqtasks.checkpoint import load_task
from seqtasks.config import config_dir
from seqtasks.data.conllu import read_conllu, write_conllu
from seqtasks.data.text import read_lines
from seqtasks.errors import ConfigError, SeqtasksError
from seqtasks.registry import DECODING


def predict(cfg: DictConfig) -> tuple[list[str], str]:
    """The results, and the separator that joins them (one line each, or a blank line between samples)."""
    task = load_task(cfg.ckpt).to(cfg.device)
    torch.manual_seed(cfg.seed)  # sampled translations (back-translation) repeat for the same seed
    strategy = DECODING.build(OmegaConf.to_container(cfg.decoding, resolve=True)) if cfg.get("decoding") else None
    if hasattr(task, "translate"):
        if cfg.input is None:
            raise ConfigError(f"{cfg.ckpt}: task '{task.registered_name}' translates lines: "
                              "set input=<file> or input=-")
        n_best = task.translate_n_best(read_lines(cfg.input), strategy, batch_size=cfg.batch_size)
        if getattr(strategy or task.strategy, "n_best", 1) == 1:
            return [hypotheses[0][0] for hypotheses in n_best], "\n"
        # Moses n-best format: input line number (0-based) ||| hypothesis ||| score, best first.
        return [f"{i} ||| {text} ||| {score if score is not None else 0.0:.4f}"
                for i, hypotheses in enumerate(n_best) for text, score in hypotheses], "\n"
    if hasattr(task, "tag"):
        return tag(task, cfg)
    if hasattr(task, "classify"):
        if cfg.input is None:
            raise ConfigError(f"{cfg.ckpt}: task '{task.registered_name}' classifies lines: "
                              "set input=<file> or input=-")
        # label<TAB>probability per line; an empty line stays empty so outputs align with inputs.
        return ["" if result is None else f"{result[0]}\t{result[1]:.4f}"
                for result in task.classify(read_lines(cfg.input), batch_size=cfg.batch_size)], "\n"
    if hasattr(task, "generate_for"):
        return generate_for_categories(task, strategy, cfg), "\n"
    if cfg.input is not None:
        raise ConfigError(f"{cfg.ckpt}: task '{task.registered_name}' generates text from prime=...; it takes no input")
    generator = torch.Generator(device=cfg.device).manual_seed(cfg.seed)
    return task.generate(cfg.prime, cfg.length, strategy, num_samples=cfg.num_samples, generator=generator), "\n\n"


def tag(task, cfg: DictConfig) -> tuple[list[str], str]:
    """CoNLL-U in -> the same CoNLL-U out with the tag column filled (every other column, comment,
    multiword token and empty node kept); plain text in (one whitespace-tokenised sentence per line)
    -> its tags, space-separated, one line per line (an empty line stays empty)."""
    if cfg.input is None:
        raise ConfigError(f"{cfg.ckpt}: task 'tagging' tags sentences: set input=<file> or input=-")
    conllu = cfg.input_format == "conllu" or (cfg.input_format == "auto" and str(cfg.input).endswith(
        (".conllu", ".conllu.gz")))
    if conllu:
        sentences = read_conllu(cfg.input)
        tags = task.tag([[word.form for word in sentence.words] for sentence in sentences], batch_size=cfg.batch_size)
        column = ((task.run_config or {}).get("data") or {}).get("column", "upos")
        text = io.StringIO()
        write_conllu(sentences, text, **{column: tags})
        blocks = text.getvalue().split("\n\n")[:-1]  # one per sentence; each sentence ends in a blank line
        return [block + "\n" for block in blocks], "\n"
    lines = read_lines(cfg.input)
    tags = task.tag([line.split() for line in lines], batch_size=cfg.batch_size)
    return [" ".join(sentence_tags) for sentence_tags in tags], "\n"


def generate_for_categories(task, strategy, cfg: DictConfig) -> list[str]:
    """Input lines are categories (e.g. languages) -> `num_samples` samples each, tab-separated, one
    line per input line (an empty line stays empty). Without input: `category<TAB>samples` for every
    category the model knows."""
    generator = torch.Generator(device=cfg.device).manual_seed(cfg.seed)
    if cfg.input is None:
        samples = task.generate_for(task.categories, strategy, num_samples=cfg.num_samples, generator=generator)
        return ["\t".join([category, *names]) for category, names in zip(task.categories, samples, strict=True)]
    lines = read_lines(cfg.input)
    requested = [line.strip() for line in lines if line.strip()]
    samples = iter(task.generate_for(requested, strategy, num_samples=cfg.num_samples, generator=generator)
                   if requested else [])
    return ["\t".join(next(samples)) if line.strip() else "" for line in lines]


def write_results(results: list[str], separator: str, output: str | None) -> None:
    text = separator.join(results) + "\n"
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {len(results)} result(s) to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def main(argv: list[str] | None = None) -> None:
    overrides = sys.argv[1:] if argv is None else argv
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("predict", overrides=overrides)
        write_results(*predict(cfg), cfg.output)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
