"""`layernorm_lstm`: a stacked, optionally bidirectional LSTM encoder made of `LayerNormLSTMCell`s.

There is no fused (cuDNN/oneDNN) kernel for it: it always runs on seqtasks' `ReferenceRNN`, one
Python step at a time, so expect it to be several times slower than `encoder=lstm`.
"""

from __future__ import annotations

from typing import Literal

from seqtasks.configuration.registry import ENCODERS
from seqtasks.configuration.validation import PositiveFloat, PositiveInt
from seqtasks.encoders.rnn import RecurrentEncoder, init_forget_bias
from seqtasks_layernorm.cell import LayerNormLSTMCell


@ENCODERS.register("layernorm_lstm")
class LayerNormLSTMEncoder(RecurrentEncoder):
    """Layer-normalised LSTM (Ba et al. 2016), reference implementation (plugin seqtasks-layernorm)."""

    fused_module = None  # no fused kernel: implementation=fused fails with a ConfigError
    reference_cell = LayerNormLSTMCell

    # The other options (hidden_size, num_layers, bidirectional, dropout, orthogonal_init) pass
    # through **options to RecurrentEncoder; the registry follows **options up the class
    # hierarchy, so it still checks them and names them in its error messages.
    def __init__(
        self,
        input_size: PositiveInt,
        forget_bias: float = 1.0,
        layer_norm_eps: PositiveFloat = 1e-5,
        implementation: Literal["reference"] = "reference",
        **options,
    ):
        self.forget_bias = forget_bias
        self.layer_norm_eps = layer_norm_eps
        super().__init__(input_size, implementation=implementation, **options)

    def cell_options(self) -> dict:
        return {"eps": self.layer_norm_eps}

    def initialise(self, orthogonal: bool) -> None:
        super().initialise(orthogonal)  # orthogonal weight_hh blocks
        # Forget-gate bias as in encoder=lstm. In this cell bias_ih is the shift of LN(W_ih x),
        # added after normalisation, so the f pre-activation starts centred on forget_bias
        # (see LayerNormLSTMCell).
        init_forget_bias(self.rnn, self.hidden_size, self.forget_bias)
