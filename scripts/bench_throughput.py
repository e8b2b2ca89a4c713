"""Characters/second of a seqtasks language-model training step versus a minimal hand-written
PyTorch loop with the same model, batch, optimizer, clipping, hidden-state carry and precision,
measured in the same process and interleaved (A B, B A, A B, ...: each round alternates which goes
first) so machine noise and drift hit both alike. Each round gives one ratio seqtasks /
hand-written; the script prints every round, then the median ratio and its spread (min-max over
rounds) last (1.0 = no framework overhead).

    SEQTASKS_DATA=../shared/data python scripts/bench_throughput.py [--steps 20] [--rounds 5] [override ...]

Overrides are Hydra overrides applied to experiment=char_rnn_shakespeare (e.g. encoder.hidden_size=256).
Run it alone on the machine: other jobs in another login session share the cores (see docs/results.md).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqtasks.configuration.compose import compose_config
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.registry import DATASETS
from seqtasks.runtime.build import build_task, container
from seqtasks.runtime.precision import resolve_precision


class StepClock(L.Callback):
    """Wall time of training steps after `warmup` steps."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = self.end = None

    def on_train_batch_start(self, trainer, task, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        self.end = time.perf_counter()


def seqtasks_chars_per_second(cfg, precision: str, steps: int, warmup: int) -> float:
    data = DATASETS.build(container(cfg.data))
    task = build_task(cfg, data)
    clock = StepClock(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=warmup + steps,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        precision=precision,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        gradient_clip_algorithm=cfg.trainer.gradient_clip_algorithm,
        enable_progress_bar=True,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(task, datamodule=data)
    return steps * cfg.data.batch_size * cfg.task.tbptt_steps / (clock.end - clock.start)


class HandWrittenLM(nn.Module):
    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, layers, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, state):
        y, state = self.lstm(self.embedding(x), state)
        return self.out(self.drop(y)), state


def hand_written_chars_per_second(
    cfg, precision: str, vocab_size: int, tokens: torch.Tensor, steps: int, warmup: int
) -> float:
    batch, seq = cfg.data.batch_size, cfg.task.tbptt_steps
    bf16 = precision.startswith("bf16")  # the same autocast Lightning's bf16-mixed uses
    model = HandWrittenLM(
        vocab_size, cfg.task.embedding_dim, cfg.encoder.hidden_size, cfg.encoder.num_layers, cfg.encoder.dropout
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.task.optimizer.lr, weight_decay=cfg.task.optimizer.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / 10_000)))
    length = (len(tokens) - 1) // batch
    rows = tokens[: batch * length + 1]
    streams = torch.stack([rows[i * length : i * length + length + 1] for i in range(batch)])  # (B, L+1)
    state, start = None, None
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        offset = (step * seq) % (length - seq)
        x, y = streams[:, offset : offset + seq], streams[:, offset + 1 : offset + seq + 1]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.gradient_clip_val)
        opt.step()
        scheduler.step()
        loss.item()  # the hand loop also reads its loss every step, as any real loop does
    return steps * batch * seq / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurements of each (at least 5)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose_config("config", ["experiment=char_rnn_shakespeare", *args.overrides])
    load_plugins(cfg.plugins)
    precision = str(resolve_precision(cfg.trainer.precision, "cpu"))
    data = DATASETS.build(container(cfg.data))
    tokenizer = data.build_tokenizers(container(cfg.tokenizer))["text"]
    tokens = torch.from_numpy(np.asarray(data.encoded("train"), dtype=np.int64))  # (N,) from the memory-mapped cache
    print(
        f"model: {cfg.encoder.num_layers}x{cfg.encoder.hidden_size} {cfg.encoder.name}, batch "
        f"{cfg.data.batch_size}x{cfg.task.tbptt_steps}, precision {precision}, "
        f"torch threads {torch.get_num_threads()}"
    )
    ours, theirs, ratios = [], [], []
    for round_ in range(args.rounds):
        torch.manual_seed(round_)
        measure = {
            "hand-written": lambda: hand_written_chars_per_second(
                cfg, precision, len(tokenizer), tokens, args.steps, args.warmup
            ),
            "seqtasks": lambda: seqtasks_chars_per_second(cfg, precision, args.steps, args.warmup),
        }
        order = list(measure) if round_ % 2 == 0 else list(reversed(measure))
        result = {name: measure[name]() for name in order}
        theirs.append(result["hand-written"])
        ours.append(result["seqtasks"])
        ratios.append(ours[-1] / theirs[-1])
        print(
            f"round {round_ + 1} ({' then '.join(order)}): hand-written {theirs[-1]:,.0f} chars/s, "
            f"seqtasks {ours[-1]:,.0f} chars/s, ratio {ratios[-1]:.3f}"
        )
    print(f"hand-written loop: median {statistics.median(theirs):,.0f} chars/s ({min(theirs):,.0f}-{max(theirs):,.0f})")
    print(f"seqtasks:          median {statistics.median(ours):,.0f} chars/s ({min(ours):,.0f}-{max(ours):,.0f})")
    print(
        f"ratio seqtasks / hand-written: median {statistics.median(ratios):.3f} over {args.rounds} rounds "
        f"(spread {min(ratios):.3f}-{max(ratios):.3f})"
    )


if __name__ == "__main__":
    main()
