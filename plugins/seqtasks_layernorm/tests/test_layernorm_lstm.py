"""Tests of the seqtasks-layernorm plugin; skipped when the plugin is not installed."""

import pytest

pytest.importorskip("seqtasks_layernorm")

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from seqtasks_layernorm import LayerNormLSTMCell, LayerNormLSTMEncoder  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import seqtasks.configuration.compose  # noqa: E402
from seqtasks.configuration.registry import ENCODERS  # noqa: E402
from seqtasks.errors import ConfigError  # noqa: E402

INPUT, HIDDEN, BATCH = 5, 7, 3


def randomise(module: torch.nn.Module) -> None:
    """Random values in every parameter, so that gains/shifts are not the identity they start as."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)


def ln_lstm_step(cell, x, h, c):
    """One LN-LSTM step written from Ba et al. 2016 (section 3.1), gate by gate, with F.layer_norm.

    (f, i, o, g) = LN(W_h h; a1, b1) + LN(W_x x; a2, b2) + b        (here b = 0, folded into b1, b2)
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(LN(c'; a3, b3))
    Rows of the weights are in PyTorch's i, f, g, o order.
    """
    H, eps = cell.hidden_size, cell.eps
    from_x = F.layer_norm(F.linear(x, cell.weight_ih), (4 * H,), cell.ln_ih_gain, cell.bias_ih, eps)
    from_h = F.layer_norm(F.linear(h, cell.weight_hh), (4 * H,), cell.ln_hh_gain, cell.bias_hh, eps)
    pre = from_x + from_h
    i_pre, f_pre, g_pre, o_pre = (pre[:, k * H : (k + 1) * H] for k in range(4))
    c_new = torch.sigmoid(f_pre) * c + torch.sigmoid(i_pre) * torch.tanh(g_pre)
    h_new = torch.sigmoid(o_pre) * torch.tanh(F.layer_norm(c_new, (H,), cell.ln_c_gain, cell.ln_c_bias, eps))
    return h_new, c_new


def test_cell_matches_ln_lstm_equations():
    torch.manual_seed(0)
    cell = LayerNormLSTMCell(INPUT, HIDDEN)
    randomise(cell)
    h, c = torch.randn(BATCH, HIDDEN), torch.randn(BATCH, HIDDEN)
    h_ref, c_ref = h, c
    for _ in range(4):  # several steps, so the state carried (c un-normalised) is checked too
        x = torch.randn(BATCH, INPUT) * 3.0
        h, c = cell(x, (h, c))
        h_ref, c_ref = ln_lstm_step(cell, x, h_ref, c_ref)
        torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c, c_ref, atol=1e-5, rtol=1e-5)


def test_cell_parameters_and_initial_values():
    cell = LayerNormLSTMCell(INPUT, HIDDEN)
    shapes = {name: tuple(p.shape) for name, p in cell.named_parameters()}
    assert shapes == {
        "weight_ih": (4 * HIDDEN, INPUT),
        "weight_hh": (4 * HIDDEN, HIDDEN),
        "bias_ih": (4 * HIDDEN,),
        "bias_hh": (4 * HIDDEN,),
        "ln_ih_gain": (4 * HIDDEN,),
        "ln_hh_gain": (4 * HIDDEN,),
        "ln_c_gain": (HIDDEN,),
        "ln_c_bias": (HIDDEN,),
    }
    randomise(cell)
    cell.reset_parameters()  # layer norms back to the identity, biases to 0
    for name in ("ln_ih_gain", "ln_hh_gain", "ln_c_gain"):
        assert torch.equal(getattr(cell, name), torch.ones_like(getattr(cell, name)))
    for name in ("bias_ih", "bias_hh", "ln_c_bias"):
        assert not getattr(cell, name).any()
    assert cell.weight_hh.abs().max() <= 1 / HIDDEN**0.5


def test_input_scale_does_not_change_the_gates():
    # The point of normalising W_ih x: scaling the input (by a positive factor) leaves the step's
    # result unchanged (up to eps).
    torch.manual_seed(1)
    cell = LayerNormLSTMCell(INPUT, HIDDEN, eps=1e-12)
    randomise(cell)
    x, state = torch.randn(BATCH, INPUT), (torch.randn(BATCH, HIDDEN), torch.randn(BATCH, HIDDEN))
    for a, b in zip(cell(x, state), cell(100.0 * x, state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_forget_bias_goes_into_the_input_layer_norm_shift():
    encoder = LayerNormLSTMEncoder(INPUT, hidden_size=HIDDEN, num_layers=2, bidirectional=True, forget_bias=2.0)
    for cell in encoder.rnn.cells:
        assert torch.equal(cell.bias_ih[HIDDEN : 2 * HIDDEN], torch.full((HIDDEN,), 2.0))
        assert not cell.bias_ih[:HIDDEN].any() and not cell.bias_ih[2 * HIDDEN :].any()
        assert not cell.bias_hh.any()
        # the orthogonal init must leave the layer-norm gains alone
        assert torch.equal(cell.ln_hh_gain, torch.ones_like(cell.ln_hh_gain))
        block = cell.weight_hh[:HIDDEN]
        torch.testing.assert_close(block @ block.T, torch.eye(HIDDEN), atol=1e-5, rtol=0)
    # With zero weights both layer norms output their shifts: f = forget_bias exactly.
    cell = encoder.rnn.cells[0]
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.zero_()
    c0 = torch.ones(1, HIDDEN)
    _, c1 = cell(torch.randn(1, cell.input_size), (torch.zeros(1, HIDDEN), c0))
    # c1 = sigmoid(2) * c0 + sigmoid(0) * tanh(0)
    torch.testing.assert_close(c1, torch.sigmoid(torch.tensor(2.0)) * c0)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_shapes_and_padding_invariance(num_layers, bidirectional):
    torch.manual_seed(2)
    directions = 2 if bidirectional else 1
    encoder = LayerNormLSTMEncoder(INPUT, hidden_size=HIDDEN, num_layers=num_layers, bidirectional=bidirectional).eval()
    assert encoder.implementation == "reference"
    assert encoder.output_size == directions * HIDDEN
    steps, lengths = 6, torch.tensor([6, 4, 1])
    x = torch.randn(3, steps, INPUT)
    out, (h, c) = encoder(x, lengths)
    assert out.shape == (3, steps, directions * HIDDEN)
    assert h.shape == c.shape == (3, num_layers * directions, HIDDEN)  # batch-first, as every encoder's
    for b, length in enumerate(lengths.tolist()):
        alone_out, (alone_h, alone_c) = encoder(x[b : b + 1, :length])
        torch.testing.assert_close(out[b : b + 1, :length], alone_out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(h[b : b + 1], alone_h, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c[b : b + 1], alone_c, atol=1e-5, rtol=1e-5)
        assert not out[b, length:].any()  # padded steps give zero outputs
    # garbage in the padding changes nothing
    noisy = x.clone()
    noisy[1, 4:] = 1e3
    noisy_out, (noisy_h, _) = encoder(noisy, lengths)
    torch.testing.assert_close(noisy_out, out)
    torch.testing.assert_close(noisy_h, h)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(3)
    encoder = LayerNormLSTMEncoder(INPUT, hidden_size=HIDDEN, num_layers=2, bidirectional=True)
    out, (h, c) = encoder(torch.randn(2, 5, INPUT), torch.tensor([5, 3]))
    (out.square().sum() + c.sum()).backward()
    for name, p in encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_registry_builds_it():
    assert "layernorm_lstm" in ENCODERS
    assert ENCODERS.describe("layernorm_lstm").startswith("Layer-normalised LSTM")
    encoder = ENCODERS.build(
        {
            "name": "layernorm_lstm",
            "hidden_size": HIDDEN,
            "num_layers": 2,
            "bidirectional": False,
            "dropout": 0.1,
            "orthogonal_init": True,
            "forget_bias": 1.0,
            "layer_norm_eps": 1e-5,
        },
        input_size=INPUT,
    )
    assert isinstance(encoder, LayerNormLSTMEncoder)
    assert all(isinstance(cell, LayerNormLSTMCell) for cell in encoder.rnn.cells)
    assert encoder.rnn.cells[0].eps == 1e-5
    with pytest.raises(ConfigError, match="has no option 'hiden_size'.*did you mean 'hidden_size'"):
        ENCODERS.build({"name": "layernorm_lstm", "hiden_size": 8}, input_size=INPUT)
    with pytest.raises(ConfigError, match="encoder.implementation='fused': expected one of 'reference'"):
        ENCODERS.build({"name": "layernorm_lstm", "implementation": "fused"}, "encoder", input_size=INPUT)


def test_hydra_config_composes():
    # Needs the search-path plugin of seqtasks to find seqtasks_layernorm/conf via the entry point.
    with initialize_config_dir(config_dir=str(seqtasks.configuration.compose.config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["encoder=layernorm_lstm", "encoder.hidden_size=16"])
    assert cfg.encoder.name == "layernorm_lstm"
    assert cfg.encoder.hidden_size == 16
    assert cfg.encoder.implementation == "reference"
    assert cfg.encoder.layer_norm_eps == pytest.approx(1e-5)
    # every key of the config is a constructor option the registry accepts
    encoder = ENCODERS.build(dict(cfg.encoder), input_size=INPUT)
    assert isinstance(encoder, LayerNormLSTMEncoder)
