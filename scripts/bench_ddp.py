"""Data-parallel scaling on CPU: the char-rnn language model trained by one process with one thread,
then by two DDP processes (gloo) with one thread each, on the same text. Prints the total
tokens/second of each (from the CSV logs, after the first steps) and the final validation loss,
the DDP run seeing as many examples as the single one.

    SEQTASKS_DATA=../shared/data python scripts/bench_ddp.py [--steps 200] [--batch-size 32] \
        [--same-global-batch] [override ...]

By default each rank reads as many rows as the single run, each DDP step sees twice
the examples, so the DDP run takes half the steps; with --same-global-batch each rank reads half
the rows, the steps are the same, and the two runs make the same updates but for rounding.
The acceptance figure (the same updates, 32 rows per rank): --batch-size 64 --same-global-batch --steps 100.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def train(work: Path, name: str, overrides: list[str]) -> dict:
    run_dir = work / name
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "seqtasks",
        "experiment=char_rnn_shakespeare",
        "trainer.max_time=null",
        "trainer.enable_progress_bar=false",
        "samples.every_n_steps=0",
        "trainer.num_sanity_val_steps=0",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as f:
        # Lightning's ThroughputMonitor logs the all-ranks total only with more than one process;
        # one process's own figure is the total there.
        rows = list(csv.DictReader(f))
    key = "train/items_per_sec" if any(row.get("train/items_per_sec") for row in rows) else "train/device/items_per_sec"
    rates = [float(row[key]) for row in rows if row.get(key)]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"tokens_per_s": statistics.median(rates[len(rates) // 4 :]), "val_loss": metrics["val/loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="steps of the single-process run")
    parser.add_argument("--batch-size", type=int, default=32, help="rows of the single-process run")
    parser.add_argument("--same-global-batch", action="store_true", help="each DDP rank reads half the rows")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    per_rank = args.batch_size // 2 if args.same_global_batch else args.batch_size
    ddp_steps = args.steps if args.same_global_batch else args.steps // 2
    with tempfile.TemporaryDirectory(prefix="seqtasks-ddp-") as directory:
        work = Path(directory)
        single = train(
            work,
            "single",
            [
                f"trainer.max_steps={args.steps}",
                f"data.batch_size={args.batch_size}",
                "trainer.accelerator=cpu",
                *args.overrides,
            ],
        )
        ddp = train(
            work,
            "ddp",
            [
                f"trainer.max_steps={ddp_steps}",
                f"data.batch_size={per_rank}",
                "trainer=ddp",
                "trainer.devices=2",
                "trainer.accelerator=cpu",
                *args.overrides,
            ],
        )
    print(
        f"1 process x 1 thread:   {single['tokens_per_s']:8,.0f} tokens/s, val/loss {single['val_loss']:.4f} "
        f"({args.steps} steps x {args.batch_size} rows)"
    )
    print(
        f"2 processes x 1 thread: {ddp['tokens_per_s']:8,.0f} tokens/s, val/loss {ddp['val_loss']:.4f} "
        f"({ddp_steps} steps x 2 x {per_rank} rows)"
    )
    print(
        f"speed-up {ddp['tokens_per_s'] / single['tokens_per_s']:.2f}x; val/loss "
        f"{100 * (ddp['val_loss'] / single['val_loss'] - 1):+.2f}%"
    )


if __name__ == "__main__":
    main()
