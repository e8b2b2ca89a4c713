"""Recurrent encoders: Elman RNN, LSTM and GRU; stacked, optionally bidirectional.

`implementation: fused` runs PyTorch's fused kernels (cuDNN on GPU, oneDNN on CPU) and is the
one to train with; `implementation: reference` runs the cells from `cells.py` step by step
(same parameters, same results), and is the only one that has the original LSTM without a
forget gate. Padded batches are packed, so padding never changes a result.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqtasks.configuration.registry import ENCODERS
from seqtasks.configuration.validation import PositiveInt, Rate
from seqtasks.encoders.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell, State
from seqtasks.encoders.reference import ReferenceRNN
from seqtasks.errors import ConfigError
from seqtasks.tensors import to_batch_first, to_layer_first


@torch.no_grad()
def init_forget_bias(rnn: nn.Module, hidden_size: int, value: float) -> None:
    """Set every LSTM-style forget gate's total bias to `value` (gate order i, f, g, o: f is the
    second block of H rows of bias_ih*/bias_hh*, in fused modules and reference cells alike).

    A positive forget-gate bias makes the cell remember by default at the start of training
    (Gers et al. 2000; Jozefowicz et al. 2015)."""
    for name, param in rnn.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("bias_ih"):
            param[hidden_size : 2 * hidden_size] = value
        elif leaf.startswith("bias_hh"):
            param[hidden_size : 2 * hidden_size] = 0.0


@ENCODERS.base_class
class RecurrentEncoder(nn.Module):
    """Base of the recurrent encoders; subclasses name a fused module and/or a reference cell.

    forward(x (B, T, I), lengths (B,) | None, state | None) -> (outputs (B, T, D*H), state), with
    the state batch-first: h (B, L*D, H), or (h, c) for LSTMs. The fused kernels' (L*D, B, H)
    layout never leaves this class.
    """

    fused_module: type[nn.RNNBase] | None = None
    reference_cell: type[RecurrentCell] | None = None

    def __init__(
        self,
        input_size: PositiveInt,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 2,
        bidirectional: bool = False,
        dropout: Rate = 0.0,
        implementation: Literal["fused", "reference"] = "fused",
        orthogonal_init: bool = True,
        weight_drop: Rate = 0.0,
    ):
        super().__init__()
        self.weight_drop = weight_drop
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.implementation = implementation
        sizes = dict(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
        )
        if implementation == "fused":
            if self.fused_module is None:
                raise ConfigError(
                    f"encoder '{self.registered_name}' has no fused kernel; set encoder.implementation=reference"
                )
            if self.cell_options():
                raise ConfigError(
                    f"encoder '{self.registered_name}' with {self.cell_options()} exists only as "
                    "reference cells; set encoder.implementation=reference"
                )
            self.rnn = self.fused_module(batch_first=True, **sizes, **self.fused_options())
        else:
            self.rnn = ReferenceRNN(self.reference_cell, **sizes, **self.reference_options())
        self.initialise(orthogonal_init)

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions

    def summary(self, state: State) -> Tensor:
        """The final hidden state of the top layer, directions concatenated: (B, D*H). For an LSTM
        the hidden state h, not the cell c. With packed input it is each sequence's own last step."""
        hidden = state[0] if isinstance(state, tuple) else state  # (B, L*D, H), layer-major
        return hidden[:, -self.num_directions :].reshape(hidden.shape[0], -1)  # (B, D*H)

    def state_from_hidden(self, hidden: Tensor) -> State:
        """A state whose hidden vectors are `hidden` (B, L*D, H); memory cells (LSTM c) start at zero."""
        extra = self.reference_cell.state_size - 1
        return hidden if extra == 0 else (hidden, *(torch.zeros_like(hidden) for _ in range(extra)))

    def fused_options(self) -> dict:
        """Extra arguments of the fused module (e.g. nonlinearity)."""
        return {}

    def reference_options(self) -> dict:
        """Extra arguments of the reference cell; by default the fused ones plus cell_options()."""
        return {**self.fused_options(), **self.cell_options()}

    def cell_options(self) -> dict:
        """Options only the reference cells have; a non-empty dict rules out the fused kernel."""
        return {}

    @torch.no_grad()
    def initialise(self, orthogonal: bool) -> None:
        if not orthogonal:
            return
        # Orthogonal recurrent matrices keep the norm of back-propagated gradients from shrinking
        # or growing at every step (Saxe et al. 2014); one orthogonal block per gate.
        for name, param in self.rnn.named_parameters():
            if name.rsplit(".", 1)[-1].startswith("weight_hh"):
                for block in param.split(self.hidden_size, dim=0):
                    nn.init.orthogonal_(block)

    def forward(self, x: Tensor, lengths: Tensor | None = None, state: State | None = None) -> tuple[Tensor, State]:
        """x (B, T, I), lengths (B,) or None (all T), state batch-first or None (zeros)
        -> outputs (B, T, D*H), final state batch-first (each row's own last step)."""
        state = to_layer_first(state)  # (L*D, B, H): the kernels' layout, inside this call only
        steps = x.shape[1]
        if self.implementation == "reference":
            out, state = self.run(x, state, lengths)
        elif lengths is None or bool((lengths >= steps).all()):
            out, state = self.run(x, state)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.run(packed, state)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)  # (B, T, D*H)
        return out, to_batch_first(state)

    def run(self, *inputs: Any) -> tuple[Any, Any]:
        """The recurrent module on inputs; in training with weight_drop > 0, on hidden-to-hidden
        matrices with DropConnect (Wan et al. 2013) as in AWD-LSTM (Merity et al. 2018): one mask
        per call, the same at every time step. The dropped matrices are handed to the module's own
        forward (functional_call), so the fused kernel still runs and gradients reach the weights."""
        if not (self.training and self.weight_drop > 0):
            with self.kernel_for(inputs[0]):
                return self.rnn(*inputs)
        dropped = {
            name: F.dropout(param, self.weight_drop)
            for name, param in self.rnn.named_parameters()
            if name.rsplit(".", 1)[-1].startswith("weight_hh")
        }
        return functional_call(self.rnn, dropped, inputs)

    def kernel_for(self, x: Any) -> AbstractContextManager:
        """PyTorch's own LSTM kernel instead of oneDNN's for one fp32 time step on the CPU (x (B, 1, I)),
        outside autocast. A oneDNN RNN call costs milliseconds even for one step of one row: 1.4 ms
        with 2 threads, 4.5 ms with 1, against 0.57 and 0.80 ms for PyTorch's (2x512 char-rnn,
        Xeon with AMX); over a sequence that cost is paid once, in decoding once per token. From 16
        to 256 rows the two are within a few percent in fp32. In bf16 PyTorch's kernel is 4-10x
        slower from 16 rows on, so bf16 keeps oneDNN."""
        one_fp32_step = (
            isinstance(self.rnn, nn.LSTM)
            and isinstance(x, Tensor)
            and x.shape[1] == 1
            and x.device.type == "cpu"
            and self.rnn.weight_hh_l0.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
        )
        # Only `enabled`: the context's defaults would also turn oneDNN's determinism off and its TF32
        # on (which warns, on every CPU without an Intel GPU).
        keep = {"deterministic": None, "allow_tf32": None, "fp32_precision": None}
        return torch.backends.mkldnn.flags(enabled=False, **keep) if one_fp32_step else nullcontext()


@ENCODERS.register("rnn")
class RNNEncoder(RecurrentEncoder):
    """Elman RNN, h_t = tanh|relu(W_ih x_t + W_hh h_{t-1} + b)."""

    fused_module = nn.RNN
    reference_cell = ElmanCell

    def __init__(self, input_size: PositiveInt, nonlinearity: Literal["tanh", "relu"] = "tanh", **options):
        self.nonlinearity = nonlinearity
        super().__init__(input_size, **options)

    def fused_options(self) -> dict:
        return {"nonlinearity": self.nonlinearity}


@ENCODERS.register("lstm")
class LSTMEncoder(RecurrentEncoder):
    """LSTM with forget-gate bias init; forget_gate=false gives the original 1997 LSTM (reference)."""

    fused_module = nn.LSTM
    reference_cell = LSTMCell

    def __init__(self, input_size: PositiveInt, forget_bias: float = 1.0, forget_gate: bool = True, **options):
        self.forget_bias = forget_bias
        self.forget_gate = forget_gate
        super().__init__(input_size, **options)

    def cell_options(self) -> dict:
        return {} if self.forget_gate else {"forget_gate": False}

    def initialise(self, orthogonal: bool) -> None:
        super().initialise(orthogonal)
        init_forget_bias(self.rnn, self.hidden_size, self.forget_bias)


@ENCODERS.register("gru")
class GRUEncoder(RecurrentEncoder):
    """GRU (Cho et al. 2014)."""

    fused_module = nn.GRU
    reference_cell = GRUCell
