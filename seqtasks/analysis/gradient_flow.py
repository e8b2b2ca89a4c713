"""Gradient flow through time: how much of the loss at the last step T reaches the hidden state of
each earlier step k, ||dL_T / dh_k||, per layer. Vanishing gradients show as a curve that falls
with the distance T - k (Bengio et al. 1994; Pascanu et al. 2013); gated cells and orthogonal
recurrent weights are the textbook remedies.

The measurement runs the reference cells (same weights as a fused model: `reference_of`) so every
step's state is a node of the graph whose gradient can be read."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from seqtasks.encoders.cells import RecurrentCell
from seqtasks.encoders.reference import ReferenceRNN


def gradient_norms(rnn: ReferenceRNN, inputs: Tensor, readout: Callable[[Tensor], Tensor]) -> Tensor:
    """inputs (B, T, I); readout(top layer's last hidden state (B, H)) -> scalar loss L_T.
    Returns (layers, T): the mean over the batch rows of ||dL_T / dh_k|| for each layer and step k
    (forward direction only for bidirectional cells)."""
    with torch.enable_grad():
        trace = rnn.trace(inputs.detach().requires_grad_(True))  # a graph even with frozen weights
        hidden = [
            [RecurrentCell.output(state) for state in trace.states[layer * rnn.num_directions]]
            for layer in range(rnn.num_layers)
        ]  # layers x T tensors (B, H)
        for step in (h for layer in hidden for h in layer):
            step.retain_grad()
        readout(hidden[-1][-1]).backward()
    return torch.stack(
        [torch.stack([h.grad.norm(dim=-1).mean() for h in layer]) for layer in hidden]
    ).detach()  # (L, T)


def decay_ratio(norms: Tensor, distance: int) -> Tensor:
    """||dL_T/dh_{T-distance}|| / ||dL_T/dh_T|| per layer, from gradient_norms' (L, T)."""
    return norms[:, -1 - distance] / norms[:, -1]
