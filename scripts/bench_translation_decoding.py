"""Decoding speed and quality of a trained translation model: translates a test set with greedy
search and with beam search and prints, for each, seconds, sacreBLEU, and the arithmetic rate
achieved (GFLOP/s from FLOPs counted by hand, below) beside this machine's measured GEMM peak for
the same precision.

    SEQTASKS_DATA=../shared/data python scripts/bench_translation_decoding.py <run>/checkpoints/best.ckpt \
        [--quantize int8|bf16 [--against-fp32 5]] [--backend onnxruntime [--compare-torch]] \
        [--shortlist 20] [--beam-size 5]

ckpt: a checkpoint, or a directory written by seqtasks.export (format=onnx for --backend
onnxruntime). --shortlist K learns the output-vocabulary shortlist (K candidates per source token
plus the 500 most frequent targets) from --train, the training pairs. Relative data paths are read
under $SEQTASKS_DATA. Timing covers the decoding of all sentences (batched by length, as
`seqtasks.predict` does), not loading the model or learning the shortlist.

FLOPs counted (multiply-adds x 2, matrix products only): per source token, every encoder layer and
direction (G gates: LSTM 4, GRU 3, RNN 1: 2 G H (I + H)) and the attention keys (dot and general
attention are counted; the MLP of additive attention is not); per decoder call
and row, every decoder layer, the attention over the row's batch's source length, the combine and
to-embedding layers and the output layer over the vocabulary the call scored (the shortlist's size
with --shortlist). Rows are counted as the search passes them to the step, so hypotheses that left
the batch cost nothing.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from statistics import median

import torch
from torch import nn

from seqtasks.data.files import default_root
from seqtasks.data.text import read_lines
from seqtasks.decoding import BeamSearch, Greedy
from seqtasks.metrics import corpus_scores
from seqtasks.runtime.arithmetic import use_arithmetic
from seqtasks.runtime.build import load_task
from seqtasks.tensors import PER_INPUT

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def rnn_flops(rnn: nn.RNNBase) -> int:
    """FLOPs of one time step of every layer and direction of a fused RNN, for one row."""
    directions = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        inputs = rnn.input_size if layer == 0 else rnn.hidden_size * directions
        total += directions * 2 * GATES[rnn.mode] * rnn.hidden_size * (inputs + rnn.hidden_size)
    return total


def linear_flops(layer: nn.Module | None) -> int:
    return 0 if layer is None else 2 * layer.in_features * layer.out_features


class FlopCount:
    """The model's FLOPs by hand: encoder per source token, decoder per row and call."""

    def __init__(self, task):
        decoder, memory = task.decoder, task.encoder.output_size
        keys = getattr(decoder.attention, "project", None)  # general attention's keys (dot has none)
        self.per_source_token = rnn_flops(task.encoder.rnn) + linear_flops(keys)
        self.per_row = rnn_flops(decoder.rnn.rnn) + linear_flops(getattr(decoder, "combine", None))
        self.per_row += linear_flops(decoder.to_embedding)
        self.per_row_and_source_token = 0 if decoder.attention is None else 2 * decoder.hidden_size + 2 * memory
        self.per_row_and_output = 2 * decoder.output.in_features
        self.total = 0

    def encoder(self, source_tokens: int) -> None:
        self.total += source_tokens * self.per_source_token

    def step(self, rows: int, source_length: int, vocabulary: int) -> None:
        self.total += rows * (
            self.per_row + source_length * self.per_row_and_source_token + vocabulary * self.per_row_and_output
        )


class Counted:
    """A decoding strategy whose step calls are counted into a FlopCount."""

    def __init__(self, strategy, flops: FlopCount):
        self.strategy, self.flops = strategy, flops

    def __getattr__(self, name):
        return getattr(self.strategy, name)

    def search(self, step, state, first_tokens, max_len, eos_id=None, generator=None, n=None):
        source = state.get(PER_INPUT, {})
        source_length = source["memory"].shape[1] if "memory" in source else 0
        self.flops.encoder(int(source["mask"].sum()) if "mask" in source else 0)

        def counted(tokens, state):
            log_probs, state = step(tokens, state)
            self.flops.step(tokens.shape[0], source_length, log_probs.shape[1])
            return log_probs, state

        return self.strategy.search(counted, state, first_tokens, max_len, eos_id, generator, n)


def gemm_peak(quantize: str | None, size: int = 2048, repeats: int = 20) -> float:
    """GFLOP/s of the best of `repeats` size x size x size matrix products in this precision."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    if quantize == "int8":
        layer = use_arithmetic(nn.Sequential(nn.Linear(size, size, bias=False)), "int8")

        def product():
            return layer(a)
    elif quantize == "bf16":
        a, b = a.bfloat16(), b.bfloat16()

        def product():
            return a @ b
    else:

        def product():
            return a @ b

    with torch.inference_mode():
        for _ in range(3):  # warm up: packing, thread pool, clock frequency
            product()
        best = min(timed(product) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def read(path: str, root: Path) -> list[str]:
    return read_lines(path if Path(path).is_file() else root / path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt")
    parser.add_argument("--source", default="multi30k/test_2016_flickr.de.gz")
    parser.add_argument("--reference", default="multi30k/test_2016_flickr.en.gz")
    parser.add_argument("--train", nargs=2, default=["multi30k/train.de.gz", "multi30k/train.en.gz"])
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--length-penalty", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quantize", choices=["int8", "bf16"])
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch")
    parser.add_argument("--shortlist", type=int, help="candidates per source token (default: no shortlist)")
    parser.add_argument("--strategies", default="greedy,beam")
    parser.add_argument(
        "--compare-torch",
        action="store_true",
        help="with --backend onnxruntime: also decode on PyTorch and print its time and the share of identical lines",
    )
    parser.add_argument(
        "--against-fp32",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="with --quantize: then decode ROUNDS times alternately with the fp32 model and this one and print "
        "the median speed-up (two separate commands can run in different phases of a shared or virtual machine)",
    )
    args = parser.parse_args()
    if args.against_fp32 and not args.quantize:
        parser.error("--against-fp32 compares a --quantize path with fp32: give --quantize")
    root = default_root()
    sources, references = read(args.source, root), read(args.reference, root)
    task = use_arithmetic(load_task(args.ckpt), args.quantize)
    torch_task = load_task(args.ckpt) if args.compare_torch else None
    if args.backend == "onnxruntime":
        from seqtasks.onnx.backend import run_on_onnxruntime

        run_on_onnxruntime(task, Path(args.ckpt))
    fp32_task = load_task(args.ckpt) if args.against_fp32 else None
    if args.shortlist:
        task.use_shortlist(zip(read(args.train[0], root), read(args.train[1], root), strict=True), args.shortlist)
        if fp32_task is not None:
            fp32_task.shortlist = task.shortlist  # the same tokenizers: the same shortlist, learned once
    precision = args.quantize or "fp32"
    peak = gemm_peak(args.quantize)
    print(
        f"{len(sources)} sentences, torch threads {torch.get_num_threads()}, {precision}, backend {args.backend}, "
        f"shortlist {args.shortlist or 'none'}; measured 2048^3 GEMM peak {precision}: {peak:.0f} GFLOP/s"
    )
    strategies = {"greedy": Greedy(), "beam": BeamSearch(args.beam_size, length_penalty=args.length_penalty)}
    for name in args.strategies.split(","):
        flops = FlopCount(task)
        strategy = Counted(strategies[name], flops)
        start = time.perf_counter()
        hypotheses = task.translate(sources, strategy, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        metrics, signatures = corpus_scores(hypotheses, references)
        label = name if name == "greedy" else f"beam {args.beam_size}"
        rate = flops.total / seconds / 1e9
        print(
            f"{label:>8}: {seconds:6.2f} s  BLEU {metrics['bleu']:.2f}  chrF {metrics['chrf']:.2f}  "
            f"{flops.total / 1e12:.3f} TFLOP counted, {rate:.0f} GFLOP/s = {100 * rate / peak:.0f}% of peak  "
            f"({signatures['bleu']})"
        )
        if torch_task is not None:
            start = time.perf_counter()
            reference = torch_task.translate(sources, strategies[name], batch_size=args.batch_size)
            same = sum(a == b for a, b in zip(hypotheses, reference, strict=True)) / len(sources)
            bleu = corpus_scores(reference, references)[0]["bleu"]
            print(
                f"{'':>8}  PyTorch: {time.perf_counter() - start:6.2f} s  BLEU {bleu:.2f}; "
                f"identical lines {100 * same:.1f}%"
            )
        if fp32_task is not None:
            ratios = []
            for _ in range(args.against_fp32):
                fp32_seconds = timed(partial(fp32_task.translate, sources, strategies[name], args.batch_size))
                seconds = timed(partial(task.translate, sources, strategies[name], args.batch_size))
                ratios.append(fp32_seconds / seconds)
                print(f"{'':>8}  fp32 {fp32_seconds:6.2f} s, {precision} {seconds:6.2f} s: {ratios[-1]:.2f}x")
            print(f"{'':>8}  median speed-up over fp32, {len(ratios)} alternating rounds: {median(ratios):.2f}x")


if __name__ == "__main__":
    main()
