"""`python -m seqtasks.predict ckpt=<path> [decoding=...] [key=value ...]`: use a trained model.

Language models: `length` characters continuing `prime`, `num_samples` times, e.g.
    python -m seqtasks.predict ckpt=outputs/.../checkpoints/best.ckpt decoding.temperature=0.8 prime="ROMEO:"
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from seqtasks.checkpoint import load_task
from seqtasks.config import config_dir
from seqtasks.errors import SeqtasksError
from seqtasks.registry import DECODING


def predict(cfg: DictConfig) -> list[str]:
    task = load_task(cfg.ckpt).to(cfg.device)
    strategy = DECODING.build(OmegaConf.to_container(cfg.decoding, resolve=True))
    generator = torch.Generator(device=cfg.device).manual_seed(cfg.seed)
    if not hasattr(task, "generate"):
        raise SeqtasksError(f"{cfg.ckpt}: task '{task.registered_name}' does not generate text")
    return task.generate(cfg.prime, cfg.length, strategy, num_samples=cfg.num_samples, generator=generator)


def write_results(results: list[str], output: str | None) -> None:
    text = "\n\n".join(results) + "\n"
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
        write_results(predict(cfg), cfg.output)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
