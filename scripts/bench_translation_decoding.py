"""Decoding speed and quality of a trained translation checkpoint: translates a test set with
greedy search and with beam search, and prints seconds and sacreBLEU for each.

    SEQTASKS_DATA=../shared/data python scripts/bench_translation_decoding.py <run>/checkpoints/best.ckpt \
        [--source multi30k/test_2016_flickr.de.gz --reference multi30k/test_2016_flickr.en.gz] [--beam-size 5]

Relative paths are read under $SEQTASKS_DATA. Timing covers the decoding of all sentences
(batched by length, as `seqtasks.predict` does), not loading the checkpoint.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from seqtasks.data.files import default_root
from seqtasks.data.text import read_lines
from seqtasks.decoding import BeamSearch, Greedy
from seqtasks.metrics import corpus_scores
from seqtasks.runtime.build import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt")
    parser.add_argument("--source", default="multi30k/test_2016_flickr.de.gz")
    parser.add_argument("--reference", default="multi30k/test_2016_flickr.en.gz")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--length-penalty", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    root = default_root()
    sources = read_lines(root / args.source if not Path(args.source).is_file() else args.source)
    references = read_lines(root / args.reference if not Path(args.reference).is_file() else args.reference)
    task = load_task(args.ckpt)
    print(f"{len(sources)} sentences, torch threads {torch.get_num_threads()}")
    strategies = {
        "greedy": Greedy(),
        f"beam {args.beam_size}": BeamSearch(args.beam_size, length_penalty=args.length_penalty),
    }
    for name, strategy in strategies.items():
        start = time.perf_counter()
        hypotheses = task.translate(sources, strategy, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        metrics, signatures = corpus_scores(hypotheses, references)
        print(
            f"{name:>8}: {seconds:6.1f} s  BLEU {metrics['bleu']:.2f}  chrF {metrics['chrf']:.2f}  "
            f"({signatures['bleu']})"
        )


if __name__ == "__main__":
    main()
