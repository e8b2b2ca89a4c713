"""Cells written from the equations vs PyTorch's fused modules with copied weights, and vs
equations written again here, independently of seqtasks' code."""

import pytest
import torch
from torch import nn

from seqtasks.encoders import GRUEncoder, LSTMEncoder, RNNEncoder
from seqtasks.encoders.cells import ElmanCell, GRUCell, LSTMCell

ENCODERS = {"rnn": RNNEncoder, "lstm": LSTMEncoder, "gru": GRUEncoder}


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_reference_matches_fused_with_padding(kind, bidirectional, num_layers):
    torch.manual_seed(0)
    options = dict(hidden_size=6, num_layers=num_layers, bidirectional=bidirectional)
    fused = ENCODERS[kind](5, **options)
    reference = ENCODERS[kind](5, implementation="reference", **options)
    reference.rnn.copy_from(fused.rnn)
    x, lengths = torch.randn(3, 7, 5), torch.tensor([7, 2, 5])
    out_fused, state_fused = fused(x, lengths)
    out_ref, state_ref = reference(x, lengths)
    torch.testing.assert_close(out_ref, out_fused, atol=1e-5, rtol=0)
    for a, b in zip(
        state_ref if kind == "lstm" else (state_ref,), state_fused if kind == "lstm" else (state_fused,), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_elman_cell_equation_tanh_and_relu():
    torch.manual_seed(1)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    for act, fn in (("tanh", torch.tanh), ("relu", torch.relu)):
        cell = ElmanCell(3, 4, nonlinearity=act)
        expected = fn(cell.weight_ih @ x.T + cell.weight_hh @ h.T + (cell.bias_ih + cell.bias_hh)[:, None]).T
        torch.testing.assert_close(cell(x, h), expected)


def test_lstm_cell_matches_torch_lstmcell():
    torch.manual_seed(2)
    ours, theirs = LSTMCell(3, 4), nn.LSTMCell(3, 4)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ours, name).copy_(getattr(theirs, name))
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    for a, b in zip(ours(x, (h, c)), theirs(x, (h, c)), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_lstm_without_forget_gate_accumulates_memory():
    torch.manual_seed(3)
    cell = LSTMCell(3, 4, forget_gate=False)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    gates = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    i, _, g, o = gates.chunk(4, 1)
    expected_c = c + torch.sigmoid(i) * torch.tanh(g)  # c_t = c_{t-1} + i * g: nothing is forgotten
    h_new, c_new = cell(x, (h, c))
    torch.testing.assert_close(c_new, expected_c)
    torch.testing.assert_close(h_new, torch.sigmoid(o) * torch.tanh(expected_c))
    # The same weights with a forget gate give a different memory: the option really changes the cell.
    cell.forget_gate = True
    assert not torch.allclose(cell(x, (h, c))[1], c_new)


def test_gru_cell_matches_torch_grucell():
    torch.manual_seed(4)
    ours, theirs = GRUCell(3, 4), nn.GRUCell(3, 4)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ours, name).copy_(getattr(theirs, name))
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    torch.testing.assert_close(ours(x, h), theirs(x, h), atol=1e-6, rtol=0)
