"""Recurrent cells written from their equations, one time step at a time.

They are the readable reference for the fused kernels (`nn.RNN/LSTM/GRU`), which they match to
1e-5 with copied weights (tests/encoders/test_reference_cells.py), and the base class for custom
cells: subclass `RecurrentCell`, implement `forward`, and `ReferenceRNN` runs it over time,
layers, directions and padding. Parameters use PyTorch's names and gate order, so weights copy
one-to-one from the fused modules.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# A cell's state: h (B, H), or (h, c) for cells with a memory cell.
State = Tensor | tuple[Tensor, ...]


class RecurrentCell(nn.Module):
    """Base class of one-step recurrent cells (subclass it to add a cell in a plugin)."""

    num_gates = 1  # blocks of H rows stacked in weight_ih / weight_hh
    state_size = 1  # 1: state is h; 2: state is (h, c)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's default for its RNN modules: U(-1/sqrt(H), 1/sqrt(H)).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch_size: int, like: Tensor) -> State:
        zeros = like.new_zeros(batch_size, self.hidden_size)
        return zeros if self.state_size == 1 else tuple(zeros for _ in range(self.state_size))

    @staticmethod
    def output(state: State) -> Tensor:
        """The hidden vector h that the next layer and the head see."""
        return state if isinstance(state, Tensor) else state[0]

    def forward(self, x: Tensor, state: State) -> State:  # x: (B, I) -> new state
        raise NotImplementedError

    def gates(self, x: Tensor, state: State) -> dict[str, Tensor]:
        """The sigmoid gate activations (each (B, H), in [0, 1]) of the step from `state` on input x,
        by name; none for a gateless cell. Gate saturation telemetry reads them."""
        return {}


class ElmanCell(RecurrentCell):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__(input_size, hidden_size)
        self.activation = {"tanh": torch.tanh, "relu": torch.relu}[nonlinearity]

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return self.activation(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)


class LSTMCell(RecurrentCell):
    """LSTM (Hochreiter & Schmidhuber 1997; forget gate from Gers et al. 2000).

    i, f, o = sigmoid(W_i* x + W_h* h + b);  g = tanh(W_ig x + W_hg h + b)
    c_t = f * c_{t-1} + i * g   (forget_gate=False: the original c_t = c_{t-1} + i * g)
    h_t = o * tanh(c_t)
    Gate order i, f, g, o as in torch.nn.LSTM. Without a forget gate the f rows are still
    allocated (so weights copy across) but unused.
    """

    num_gates = 4
    state_size = 2

    def __init__(self, input_size: int, hidden_size: int, forget_gate: bool = True):
        super().__init__(input_size, hidden_size)
        self.forget_gate = forget_gate

    def preactivations(self, x: Tensor, h: Tensor) -> tuple[Tensor, ...]:
        """i, f, g, o before their nonlinearities, each (B, H)."""
        return (x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh).chunk(4, dim=1)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, g, o = self.preactivations(x, h)
        memory = torch.sigmoid(f) * c if self.forget_gate else c
        c = memory + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def gates(self, x: Tensor, state: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        i, f, _, o = self.preactivations(x, state[0])
        gates = {"input": torch.sigmoid(i), "forget": torch.sigmoid(f), "output": torch.sigmoid(o)}
        if not self.forget_gate:
            del gates["forget"]
        return gates


class GRUCell(RecurrentCell):
    """GRU (Cho et al. 2014), in torch.nn.GRU's form:

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr);  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h_t = (1 - z) * n + z * h_{t-1}
    """

    num_gates = 3

    def projections(self, x: Tensor, h: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """(x_r, x_z, x_n) and (h_r, h_z, h_n), each (B, H): the input's and the state's share of each gate."""
        from_input = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)
        return from_input, (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=1)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        (x_r, x_z, x_n), (h_r, h_z, h_n) = self.projections(x, h)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h

    def gates(self, x: Tensor, h: Tensor) -> dict[str, Tensor]:
        (x_r, x_z, _), (h_r, h_z, _) = self.projections(x, h)
        return {"reset": torch.sigmoid(x_r + h_r), "update": torch.sigmoid(x_z + h_z)}
