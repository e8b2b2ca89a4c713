"""`ReferenceRNN`: runs any `RecurrentCell` over time, layers and directions, with padding.

It mirrors `torch.nn.RNN/LSTM/GRU` (batch_first) in arguments, state layout and results, but loops
in Python one step at a time, so it is slow: use it to read, test and extend, not to train big
models. Padded steps leave the state unchanged and give zero outputs, exactly as packed
sequences do in the fused modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.encoders.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell, State
from seqtasks.tensors import lengths_mask


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length, leaving padding where it is. x: (B, T, ...)."""
    if lengths is None:
        return x.flip(1)
    batch, steps = x.shape[:2]
    positions = torch.arange(steps, device=x.device).expand(batch, steps)  # (B, T)
    reversed_positions = lengths.to(x.device)[:, None] - 1 - positions
    index = torch.where(reversed_positions >= 0, reversed_positions, positions)
    index = index.view(batch, steps, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def _where(keep: Tensor, new: State, old: State) -> State:
    """Per batch row: new state where keep (B,) is true, old state elsewhere."""
    if isinstance(new, Tensor):
        return torch.where(keep[:, None], new, old)
    return tuple(torch.where(keep[:, None], n, o) for n, o in zip(new, old, strict=True))


def _split_state(state: State | None, index: int) -> State | None:
    """The state of one (layer, direction) from the stacked (L*D, B, H) layout."""
    if state is None:
        return None
    return state[index] if isinstance(state, Tensor) else tuple(s[index] for s in state)


def _stack_states(states: list[State]) -> State:
    if isinstance(states[0], Tensor):
        return torch.stack(states)  # (L*D, B, H)
    return tuple(torch.stack(parts) for parts in zip(*states, strict=True))


# The reference cell (and its options) that computes what each fused module mode computes.
FUSED_CELLS: dict[str, tuple[type[RecurrentCell], dict]] = {
    "RNN_TANH": (ElmanCell, {"nonlinearity": "tanh"}),
    "RNN_RELU": (ElmanCell, {"nonlinearity": "relu"}),
    "LSTM": (LSTMCell, {}),
    "GRU": (GRUCell, {}),
}


@dataclass
class Trace:
    """Every step of a `ReferenceRNN` run, per (layer, direction) index (layer * D + direction), in
    the order the cell read them (a backward direction reads reversed in time): inputs[i] (B, T, I),
    initial[i] the state before the first step, states[i] the state after each step (T of them)."""

    inputs: list[Tensor] = field(default_factory=list)
    initial: list[State] = field(default_factory=list)
    states: list[list[State]] = field(default_factory=list)


class ReferenceRNN(nn.Module):
    """Stacked, optionally bidirectional recurrence over any cell class; nn.RNN-like interface."""

    def __init__(
        self,
        cell: type[RecurrentCell],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        **cell_options,
    ):
        super().__init__()
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.dropout = dropout
        self.cells = nn.ModuleList(
            cell(input_size if layer == 0 else hidden_size * self.num_directions, hidden_size, **cell_options)
            for layer in range(num_layers)
            for _ in range(self.num_directions)
        )  # index: layer * num_directions + direction, as in the fused modules' state layout

    @classmethod
    def like(cls, fused: nn.RNNBase) -> ReferenceRNN:
        """Reference cells that compute what `fused` (an nn.RNN/LSTM/GRU) computes, with its weights
        copied: its activations and gates, step by step, for inspection and telemetry."""
        cell, options = FUSED_CELLS[fused.mode]
        replica = cls(cell, fused.input_size, fused.hidden_size, fused.num_layers, fused.bidirectional, **options)
        replica.copy_from(fused)
        return replica.to(fused.weight_ih_l0)

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None):
        """x: (B, T, I); lengths: (B,) or None -> outputs (B, T, D*H), final state (L*D, B, H)."""
        return self._run(x, state, lengths)

    def trace(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> Trace:
        """The state after every step of every layer and direction (see `Trace`); with autograd,
        so gradients with respect to any step's state can be read."""
        trace = Trace()
        self._run(x, state, lengths, trace)
        return trace

    def _run(self, x: Tensor, state: State | None, lengths: Tensor | None, trace: Trace | None = None):
        batch, steps, _ = x.shape
        mask = None if lengths is None else lengths_mask(lengths.to(x.device), steps)  # (B, T)
        layer_input, finals = x, []
        for layer in range(self.num_layers):
            direction_outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                cell = self.cells[index]
                h = _split_state(state, index)
                h = cell.initial_state(batch, x) if h is None else h
                inputs = layer_input if direction == 0 else reverse_padded(layer_input, lengths)
                if trace is not None:
                    trace.inputs.append(inputs)
                    trace.initial.append(h)
                states = []
                for t in range(steps):
                    new = cell(inputs[:, t], h)
                    h = new if mask is None else _where(mask[:, t], new, h)
                    states.append(h)
                if trace is not None:
                    trace.states.append(states)
                out = torch.stack([cell.output(s) for s in states], dim=1)  # (B, T, H)
                if mask is not None:
                    out = out * mask[..., None]
                direction_outputs.append(out if direction == 0 else reverse_padded(out, lengths))
                finals.append(h)
            layer_input = torch.cat(direction_outputs, dim=-1)  # (B, T, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
        return layer_input, _stack_states(finals)

    @torch.no_grad()
    def copy_from(self, fused: nn.RNNBase) -> None:
        """Copy the weights of a fused nn.RNN/LSTM/GRU with the same shape into these cells."""
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                cell = self.cells[layer * self.num_directions + direction]
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(fused, name + suffix))


def reference_of(rnn: nn.Module) -> ReferenceRNN:
    """`rnn` itself when it already runs reference cells, else a reference copy of the fused module."""
    return rnn if isinstance(rnn, ReferenceRNN) else ReferenceRNN.like(rnn)
