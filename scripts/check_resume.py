"""Kill-and-resume check: a run killed with SIGKILL and resumed with resume=auto must end exactly
where the uninterrupted run ends. Trains the given config three times, each as its own process:

1. uninterrupted, for the steps the overrides give;
2. the same, killed with SIGKILL a random time (up to --max-delay seconds) after its first
   periodic checkpoint (checkpoints/last.ckpt) appears;
3. that run again with resume=auto, into the same run directory.

Then compares metrics.json and the weights of last.ckpt and best.ckpt bit for bit, and prints the
step the kill hit and every metric. Give max_steps (not max_time: time is not reproducible), e.g.

    SEQTASKS_DATA=../shared/data python scripts/check_resume.py experiment=char_rnn_shakespeare \
        trainer.max_time=null trainer.max_steps=600 checkpoint.every_n_steps=100
    SEQTASKS_DATA=../shared/data python scripts/check_resume.py task=translation \
        trainer.max_time=null trainer.max_steps=300 trainer.val_check_interval=100 checkpoint.every_n_steps=50
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

COMMON = ["trainer.enable_progress_bar=false", "samples.every_n_steps=0"]


def command(run_dir: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "seqtasks", *COMMON, *overrides, f"hydra.run.dir={run_dir}"]


def finish(run_dir: Path, overrides: list[str]) -> dict:
    result = subprocess.run(command(run_dir, overrides), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{run_dir.name} failed:\n{result.stderr[-3000:]}")
    return json.loads((run_dir / "metrics.json").read_text())


def kill_after_first_checkpoint(run_dir: Path, overrides: list[str], max_delay: float, seed: int) -> int:
    """Start the run, SIGKILL it a random time after last.ckpt first appears; the step it was saved at."""
    last = run_dir / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(command(run_dir, overrides), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not last.exists():
        if process.poll() is not None:
            raise SystemExit(f"the run ended before its first periodic checkpoint:\n{process.stderr.read()[-3000:]}")
        time.sleep(0.05)
    time.sleep(random.Random(seed).uniform(0.0, max_delay))
    if process.poll() is not None:
        raise SystemExit("the run finished before the kill: give more steps or a smaller --max-delay")
    process.send_signal(signal.SIGKILL)
    process.wait()
    return torch.load(last, map_location="cpu", weights_only=True)["global_step"]


def same_weights(a: Path, b: Path) -> bool:
    first = torch.load(a, map_location="cpu", weights_only=True)["state_dict"]
    second = torch.load(b, map_location="cpu", weights_only=True)["state_dict"]
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-delay", type=float, default=20.0, help="seconds after the first checkpoint")
    parser.add_argument("--seed", type=int, default=None, help="of the kill delay (default: random)")
    parser.add_argument("--work", type=Path, default=None, help="keep the run directories here")
    parser.add_argument("overrides", nargs="+")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    with tempfile.TemporaryDirectory(prefix="seqtasks-resume-") as directory:
        work = args.work or Path(directory)
        started = time.monotonic()
        whole = finish(work / "whole", args.overrides)
        print(f"uninterrupted run: {time.monotonic() - started:.0f} s")
        step = kill_after_first_checkpoint(work / "killed", args.overrides, args.max_delay, seed)
        print(f"killed (SIGKILL, delay seed {seed}); last.ckpt then held step {step}")
        resumed = finish(work / "killed", [*args.overrides, "resume=auto"])
        checkpoints = {
            name: same_weights(work / "whole" / "checkpoints" / name, work / "killed" / "checkpoints" / name)
            for name in ("last.ckpt", "best.ckpt")
        }
    for key in sorted(whole):
        mark = "==" if whole[key] == resumed.get(key) else "!="
        print(f"  {key}: {whole[key]} {mark} {resumed.get(key)}")
    print(f"metrics identical: {whole == resumed}; weights identical: {checkpoints}")
    if whole != resumed or not all(checkpoints.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
