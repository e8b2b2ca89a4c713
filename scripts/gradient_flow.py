"""Gradient flow through time on real text: ||dL_T/dh_k|| for every step k before the loss at the
last step T, for freshly initialised 1-layer cells (Elman RNN, LSTM, LSTM without forget gate, GRU;
PyTorch's default uniform init and the orthogonal recurrent init) and for trained checkpoints,
all on the same batch of text. Draws one PNG (log scale, one curve per model) and prints the
ratio ||dL_T/dh_{T-d}|| / ||dL_T/dh_T|| at d = 10 and 50 for each.

    SEQTASKS_DATA=../shared/data python scripts/gradient_flow.py [--hidden-size 256] [--steps 100] \
        [--checkpoint label=run/checkpoints/best.ckpt ...] [--output gradient_flow.png]

Fresh cells read the text through a fixed random embedding and are scored by a fixed random
readout (cross-entropy of the true character at T); a checkpoint uses its own embedding and head.
LSTMs start with seqtasks' forget-gate bias of 1 in both inits.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from seqtasks.analysis.figures import gradient_flow_figure
from seqtasks.analysis.gradient_flow import decay_ratio, gradient_norms
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.registry import ENCODERS
from seqtasks.encoders.reference import reference_of
from seqtasks.runtime.build import load_task
from seqtasks.tokenizers.char import CharTokenizer

FRESH = {
    "rnn": {"name": "rnn"},
    "lstm": {"name": "lstm"},
    "lstm, no forget gate": {"name": "lstm", "forget_gate": False},
    "gru": {"name": "gru"},
}


def windows(text: str, tokenizer, batch: int, steps: int, seed: int) -> torch.Tensor:
    """(B, T + 1) ids of `batch` random windows of the text."""
    ids = torch.tensor(tokenizer.encode(text))
    starts = torch.randint(0, len(ids) - steps - 1, (batch,), generator=torch.Generator().manual_seed(seed))
    return torch.stack([ids[s : s + steps + 1] for s in starts.tolist()])


def fresh_curve(options: dict, orthogonal: bool, vocab: int, ids: torch.Tensor, args) -> torch.Tensor:
    torch.manual_seed(args.seed)
    encoder = ENCODERS.build(
        {
            **options,
            "hidden_size": args.hidden_size,
            "num_layers": 1,
            "implementation": "reference",
            "orthogonal_init": orthogonal,
        },
        "encoder",
        input_size=args.embedding_dim,
    )
    embedding = nn.Embedding(vocab, args.embedding_dim)
    readout = nn.Linear(args.hidden_size, vocab)
    inputs = embedding(ids[:, :-1]).detach()  # (B, T, E)
    return gradient_norms(encoder.rnn, inputs, lambda h: F.cross_entropy(readout(h), ids[:, -1]))[0]


def checkpoint_curve(path: str, text: str, args) -> torch.Tensor:
    task = load_task(path).eval()
    ids = windows(text, task.tokenizer, args.batch, args.steps, args.seed)
    inputs = task.embedding(ids[:, :-1]).detach()
    rnn = reference_of(task.encoder.rnn)
    norms = gradient_norms(rnn, inputs, lambda h: F.cross_entropy(task.head(h[:, None])[:, 0], ids[:, -1]))
    return norms[-1]  # the top layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--text", default=str(Path(os.environ.get("SEQTASKS_DATA", "data")) / "tinyshakespeare" / "input.txt")
    )
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="T: steps between the first state and the loss")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", action="append", default=[], help="label=path of a trained language model")
    parser.add_argument("--no-fresh", action="store_true", help="only the checkpoints")
    parser.add_argument("--output", default="gradient_flow.png")
    args = parser.parse_args()
    load_plugins()  # a checkpoint's task and encoder are looked up in the registries
    text = Path(args.text).read_text(encoding="utf-8")
    tokenizer = CharTokenizer().fit([text])
    ids = windows(text, tokenizer, args.batch, args.steps, args.seed)
    curves = {}
    if not args.no_fresh:
        for name, options in FRESH.items():
            for orthogonal in (False, True):
                label = f"{name}, {'orthogonal' if orthogonal else 'default'} init"
                curves[label] = fresh_curve(options, orthogonal, len(tokenizer), ids, args)
    for item in args.checkpoint:
        label, _, path = item.rpartition("=")
        curves[label or path] = checkpoint_curve(path, text, args)
    print(f"{'model':<45} {'ratio d=10':>12} {'ratio d=50':>12}")
    for label, norms in curves.items():
        ratios = [float(decay_ratio(norms[None], d)[0]) for d in (10, 50) if d < len(norms)]
        print(f"{label:<45} " + " ".join(f"{r:12.3e}" for r in ratios))
    gradient_flow_figure(curves, f"||dL_T/dh_k||, T = {args.steps}, {args.hidden_size} units").savefig(
        args.output, dpi=110
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
