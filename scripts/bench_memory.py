"""Peak memory of a language-model run on a big text file against the same run on a small one: the
corpus is streamed and tokenised into a memory-mapped cache, so memory must not grow with the
file. Makes a file of the Tiny Shakespeare text repeated to --size-mb, trains a few steps on the
small file, then twice on the big one (the second run must reuse the cached ids, not tokenise
again), each as its own process, and prints each run's peak resident memory and start-up time.

    SEQTASKS_DATA=../shared/data python scripts/bench_memory.py [--size-mb 200] [--steps 20] [override ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqtasks.data.files import default_root


def run(text: Path, work: Path, name: str, steps: int, overrides: list[str]) -> dict:
    """One training run in a child process -> its peak RSS (MB), wall time, and whether it tokenised."""
    command = [
        sys.executable,
        "-m",
        "seqtasks",
        "experiment=char_rnn_shakespeare",
        "data=text_file",
        f"data.path={text}",
        f"data.cache_dir={work / 'cache'}",
        f"trainer.max_steps={steps}",
        "trainer.max_time=null",
        "trainer.limit_val_batches=4",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "samples.every_n_steps=0",
        "logger=[]",
        f"hydra.run.dir={work / name}",
        *overrides,
    ]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    log = child.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed:\n{log[-3000:]}")
    tokenised = re.findall(r"tokenised ([\d,]+) tokens in ([\d.]+) s", log)
    return {
        "peak_mb": usage.ru_maxrss / 1024,
        "seconds": seconds,
        "tokenised": tokenised,
        "cached": "from the cache" in log,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    source = default_root() / "tinyshakespeare" / "input.txt"
    with tempfile.TemporaryDirectory(prefix="seqtasks-memory-") as directory:
        work = Path(directory)
        text = source.read_bytes()
        big = work / "big.txt"
        with open(big, "wb") as f:
            for _ in range(max(1, args.size_mb * (1 << 20) // len(text))):
                f.write(text)
        sizes = f"small file {len(text) / 1e6:.1f} MB, big file {big.stat().st_size / 1e6:.1f} MB"
        print(f"{sizes}; {args.steps} steps each")
        results = {
            "small": run(source, work, "small", args.steps, args.overrides),
            "big, first run": run(big, work, "big1", args.steps, args.overrides),
            "big, second run": run(big, work, "big2", args.steps, args.overrides),
        }
        for name, result in results.items():
            how = "ids from the cache" if result["cached"] else f"tokenised {result['tokenised']}"
            print(f"{name:>16}: peak RSS {result['peak_mb']:7.1f} MB, {result['seconds']:6.1f} s ({how})")
        growth = results["big, first run"]["peak_mb"] - results["small"]["peak_mb"]
        print(
            f"peak RSS growth from the small to the big file: {growth:+.1f} MB; second run re-tokenised: "
            f"{not results['big, second run']['cached']}"
        )


if __name__ == "__main__":
    main()
