"""Characters/second of a seqtasks language-model training step versus a minimal hand-written
PyTorch loop with the same model, batch, optimizer, clipping and hidden-state carry, measured in
the same process and interleaved (A B A B ...) so machine noise hits both alike. Prints the ratio
seqtasks / hand-written last (1.0 = no framework overhead).

    SEQTASKS_DATA=../shared/data python scripts/bench_throughput.py [--steps 20] [--rounds 2] [override ...]

Overrides are Hydra overrides applied to experiment=char_rnn_shakespeare (e.g. encoder.hidden_size=256).
"""

from __future__ import annotations

import argparse
import math
import time

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from torch import nn
from torch.nn import functional as F

from seqtasks.config import config_dir
from seqtasks.plugins import load_plugins
from seqtasks.registry import DATASETS
from seqtasks.run import build_task, container


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


def seqtasks_chars_per_second(cfg, steps: int, warmup: int) -> float:
    data = DATASETS.build(container(cfg.data))
    task = build_task(cfg, data)
    clock = StepClock(warmup)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=warmup + steps, logger=False, enable_checkpointing=False,
        num_sanity_val_steps=0, limit_val_batches=0, precision=cfg.trainer.precision,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        gradient_clip_algorithm=cfg.trainer.gradient_clip_algorithm, enable_progress_bar=True,
        enable_model_summary=False, callbacks=[clock],
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


def hand_written_chars_per_second(cfg, vocab_size: int, tokens: torch.Tensor, steps: int, warmup: int) -> float:
    batch, seq = cfg.data.batch_size, cfg.task.tbptt_steps
    bf16 = str(cfg.trainer.precision).startswith("bf16")  # the same autocast Lightning's bf16-mixed uses
    model = HandWrittenLM(vocab_size, cfg.task.embedding_dim, cfg.encoder.hidden_size, cfg.encoder.num_layers,
                          cfg.encoder.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.task.optimizer.lr, weight_decay=cfg.task.optimizer.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / 10_000)))
    length = (len(tokens) - 1) // batch
    rows = tokens[: batch * length + 1]
    streams = torch.stack([rows[i * length: i * length + length + 1] for i in range(batch)])  # (B, L+1)
    state, start = None, None
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        offset = (step * seq) % (length - seq)
        x, y = streams[:, offset:offset + seq], streams[:, offset + 1:offset + seq + 1]
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
    parser.add_argument("--rounds", type=int, default=2, help="interleaved measurements of each")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=char_rnn_shakespeare", *args.overrides])
    load_plugins(cfg.plugins)
    data = DATASETS.build(container(cfg.data))
    tokenizer = data.build_tokenizers(container(cfg.tokenizer))["text"]
    tokens = torch.tensor(tokenizer.encode(data.split()[0]))
    print(f"model: {cfg.encoder.num_layers}x{cfg.encoder.hidden_size} {cfg.encoder.name}, batch "
          f"{cfg.data.batch_size}x{cfg.task.tbptt_steps}, precision {cfg.trainer.precision}, "
          f"torch threads {torch.get_num_threads()}")
    ours, theirs = [], []
    for round_ in range(args.rounds):
        torch.manual_seed(round_)
        theirs.append(hand_written_chars_per_second(cfg, len(tokenizer), tokens, args.steps, args.warmup))
        ours.append(seqtasks_chars_per_second(cfg, args.steps, args.warmup))
        print(f"round {round_ + 1}: hand-written {theirs[-1]:,.0f} chars/s, seqtasks {ours[-1]:,.0f} chars/s")
    best_ours, best_theirs = max(ours), max(theirs)
    print(f"hand-written loop: {best_theirs:,.0f} chars/s (best of {args.rounds})")
    print(f"seqtasks:          {best_ours:,.0f} chars/s (best of {args.rounds})")
    print(f"ratio seqtasks / hand-written: {best_ours / best_theirs:.3f}")


if __name__ == "__main__":
    main()
