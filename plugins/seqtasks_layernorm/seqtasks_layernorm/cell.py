"""`LayerNormLSTMCell`: the LSTM with layer normalisation of Ba, Kiros & Hinton 2016, "Layer
Normalization" (arXiv:1607.06450), section 3.1 / appendix "Layer-normalized LSTM":

    (i, f, g, o) = LN(W_ih x_t; a_ih, b_ih) + LN(W_hh h_{t-1}; a_hh, b_hh)    each LN over all 4H
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(LN(c_t; a_c, b_c))                                 LN over H

LN(v; a, b) = a * (v - mean(v)) / sqrt(var(v) + eps) + b, statistics per example over the features.
Normalising the input and recurrent contributions separately keeps either from swamping the other
whatever the scale of x or of W_hh; normalising c_t keeps tanh out of saturation as c grows.
The state carried to the next step is the un-normalised c_t.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.encoders.cells import RecurrentCell


class LayerNormLSTMCell(RecurrentCell):
    """Layer-normalised LSTM cell (Ba et al. 2016); gate order i, f, g, o as in torch.nn.LSTM.

    Parameters: weight_ih (4H, I) and weight_hh (4H, H) as in nn.LSTM; bias_ih and bias_hh (4H)
    are the shifts of the two gate layer norms (b_ih, b_hh above), i.e. they are added AFTER
    normalisation; ln_ih_gain, ln_hh_gain (4H) are the two gains; ln_c_gain, ln_c_bias (H) those
    of the layer norm of c_t.

    Why the biases go after the normalisation: a bias added before LN would be centred and divided
    by the per-example std of W x, so its effect would depend on the input's scale, and a
    forget-gate bias would partly leak into the other gates through the mean. After LN it is
    exactly the paper's gate bias b (b_ih + b_hh; the two are redundant, as in nn.LSTM). That also
    makes the encoder's forget-bias init work unchanged: it writes forget_bias into the f block of
    bias_ih (the LN shift of the input part) and 0 into that of bias_hh, and sigmoid(f) then starts
    centred on sigmoid(forget_bias) whatever the inputs. (The names keep PyTorch's bias_ih/bias_hh
    for that reason; the extra parameters start with ln_ so that code matching weight_hh*/bias_*
    by prefix, like the orthogonal and forget-bias inits, leaves them alone.)
    """

    num_gates = 4
    state_size = 2

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-5):
        super().__init__(input_size, hidden_size)  # weight_ih/hh, bias_ih/hh, then reset_parameters()
        rows = self.num_gates * hidden_size
        self.eps = eps
        self.ln_ih_gain = nn.Parameter(torch.ones(rows))
        self.ln_hh_gain = nn.Parameter(torch.ones(rows))
        self.ln_c_gain = nn.Parameter(torch.ones(hidden_size))
        self.ln_c_bias = nn.Parameter(torch.zeros(hidden_size))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # Weights: PyTorch's RNN default, U(-1/sqrt(H), 1/sqrt(H)). Layer norms start as the
        # identity (gains 1, shifts 0), as in nn.LayerNorm and the paper. The base __init__ calls
        # this before the ln_* parameters exist, hence the getattr.
        super().reset_parameters()
        nn.init.zeros_(self.bias_ih)
        nn.init.zeros_(self.bias_hh)
        for name in ("ln_ih_gain", "ln_hh_gain", "ln_c_gain"):
            if (gain := getattr(self, name, None)) is not None:
                nn.init.ones_(gain)
        if (shift := getattr(self, "ln_c_bias", None)) is not None:
            nn.init.zeros_(shift)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        gates_shape = (self.num_gates * self.hidden_size,)
        gates = F.layer_norm(x @ self.weight_ih.T, gates_shape, self.ln_ih_gain, self.bias_ih, self.eps) + F.layer_norm(
            h @ self.weight_hh.T, gates_shape, self.ln_hh_gain, self.bias_hh, self.eps
        )
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        c_normed = F.layer_norm(c, (self.hidden_size,), self.ln_c_gain, self.ln_c_bias, self.eps)
        h = torch.sigmoid(o) * torch.tanh(c_normed)
        return h, c
