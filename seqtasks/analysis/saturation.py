"""Gate saturation: the share of LSTM/GRU gate activations near 0 or 1, where the sigmoid's slope
(and so the gradient through the gate) is close to zero. Read through the reference cells'
equations from a recorded trace, so it works for fused modules too."""

from __future__ import annotations

import torch
from torch import Tensor

from seqtasks.encoders.reference import ReferenceRNN, Trace
from seqtasks.tensors import lengths_mask


@torch.no_grad()
def gate_saturation(
    rnn: ReferenceRNN, trace: Trace, lengths: Tensor | None = None, low: float = 0.05, high: float = 0.95
) -> dict[str, float]:
    """{"layer<l>/<gate>": share of the gate's activations below `low` or above `high`} over every
    real (unpadded) step of the trace, both directions pooled; {} for gateless cells."""
    batch, steps = trace.inputs[0].shape[:2]
    valid = torch.ones(batch, steps, dtype=torch.bool) if lengths is None else lengths_mask(lengths.cpu(), steps)
    counts: dict[str, list[float]] = {}
    for index, cell in enumerate(rnn.cells):
        layer = index // rnn.num_directions
        previous = [trace.initial[index], *trace.states[index][:-1]]  # the state each step started from
        for t in range(steps):
            # a backward direction reads reversed, but each row's valid steps are still its first `length`
            rows = valid[:, t].to(trace.inputs[index].device)
            for name, gate in cell.gates(trace.inputs[index][:, t], previous[t]).items():
                gate = gate[rows]
                saturated = ((gate < low) | (gate > high)).sum().item()
                total = counts.setdefault(f"layer{layer}/{name}", [0.0, 0.0])
                total[0] += saturated
                total[1] += gate.numel()
    return {key: saturated / size for key, (saturated, size) in counts.items() if size}
