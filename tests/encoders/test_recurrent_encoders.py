import itertools

import pytest
import torch

from seqtasks.configuration.registry import ENCODERS
from seqtasks.errors import ConfigError

CASES = list(itertools.product(["rnn", "lstm", "gru"], [False, True], [1, 3], ["fused", "reference"]))


@pytest.mark.parametrize(("kind", "bidirectional", "num_layers", "implementation"), CASES)
def test_shapes(kind, bidirectional, num_layers, implementation):
    encoder = ENCODERS.build(
        {
            "name": kind,
            "hidden_size": 5,
            "num_layers": num_layers,
            "bidirectional": bidirectional,
            "implementation": implementation,
        },
        input_size=4,
    )
    directions = 2 if bidirectional else 1
    out, state = encoder(torch.randn(3, 6, 4), torch.tensor([6, 3, 1]))
    assert out.shape == (3, 6, 5 * directions) == (3, 6, encoder.output_size)
    for s in state if kind == "lstm" else (state,):
        assert s.shape == (3, num_layers * directions, 5)  # batch-first, as every module boundary has it


@pytest.mark.parametrize(("kind", "bidirectional", "num_layers", "implementation"), CASES)
def test_padding_never_changes_a_result(kind, bidirectional, num_layers, implementation):
    torch.manual_seed(0)
    encoder = ENCODERS.build(
        {
            "name": kind,
            "hidden_size": 5,
            "num_layers": num_layers,
            "bidirectional": bidirectional,
            "implementation": implementation,
        },
        input_size=4,
    )
    alone = torch.randn(1, 3, 4)
    padded = torch.cat([alone, torch.full((1, 4, 4), 7.0)], dim=1)  # garbage in the padding
    batch = torch.cat([padded, torch.randn(1, 7, 4)])
    out_alone, state_alone = encoder(alone)
    out_batch, state_batch = encoder(batch, torch.tensor([3, 7]))
    torch.testing.assert_close(out_batch[:1, :3], out_alone, atol=1e-6, rtol=0)
    assert out_batch[0, 3:].abs().max() == 0  # padded positions give zeros
    for a, b in zip(
        state_alone if kind == "lstm" else (state_alone,),
        state_batch if kind == "lstm" else (state_batch,),
        strict=True,
    ):
        torch.testing.assert_close(b[:1], a, atol=1e-6, rtol=0)


def test_bidirectional_output_is_forward_and_backward_concatenated():
    torch.manual_seed(0)
    bi = ENCODERS.build({"name": "gru", "hidden_size": 4, "num_layers": 1, "bidirectional": True}, input_size=3)
    forward = ENCODERS.build({"name": "gru", "hidden_size": 4, "num_layers": 1}, input_size=3)
    backward = ENCODERS.build({"name": "gru", "hidden_size": 4, "num_layers": 1}, input_size=3)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(forward.rnn, f"{name}_l0").copy_(getattr(bi.rnn, f"{name}_l0"))
            getattr(backward.rnn, f"{name}_l0").copy_(getattr(bi.rnn, f"{name}_l0_reverse"))
    x = torch.randn(2, 5, 3)
    out, _ = bi(x)
    torch.testing.assert_close(out[..., :4], forward(x)[0])
    torch.testing.assert_close(out[..., 4:], backward(x.flip(1))[0].flip(1))


def test_initialisation_orthogonal_and_forget_bias():
    encoder = ENCODERS.build({"name": "lstm", "hidden_size": 8, "num_layers": 2, "forget_bias": 1.5}, input_size=3)
    for layer in range(2):
        w_hh = getattr(encoder.rnn, f"weight_hh_l{layer}")
        for block in w_hh.split(8):
            torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
        b_ih, b_hh = getattr(encoder.rnn, f"bias_ih_l{layer}"), getattr(encoder.rnn, f"bias_hh_l{layer}")
        assert torch.all(b_ih[8:16] + b_hh[8:16] == 1.5)  # the forget gate's total bias
    reference = ENCODERS.build(
        {"name": "lstm", "hidden_size": 8, "implementation": "reference", "forget_bias": 2.0}, input_size=3
    )
    assert torch.all(reference.rnn.cells[0].bias_ih[8:16] + reference.rnn.cells[0].bias_hh[8:16] == 2.0)


def test_dropout_between_layers_only_in_training():
    encoder = ENCODERS.build({"name": "lstm", "hidden_size": 8, "num_layers": 2, "dropout": 0.5}, input_size=3)
    x = torch.randn(2, 5, 3)
    encoder.train()
    assert not torch.allclose(encoder(x)[0], encoder(x)[0])
    encoder.eval()
    torch.testing.assert_close(encoder(x)[0], encoder(x)[0])


def test_a_state_passed_in_continues_the_sequence():
    torch.manual_seed(0)
    encoder = ENCODERS.build({"name": "lstm", "hidden_size": 5, "num_layers": 2}, input_size=4)
    x = torch.randn(3, 8, 4)
    whole, final = encoder(x)
    first, state = encoder(x[:, :5])
    second, continued = encoder(x[:, 5:], None, state)  # the batch-first state goes back in as it came out
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    for a, b in zip(final, continued, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"name": "lstm", "forget_gate": False},
            "exists only as reference cells; set encoder.implementation=reference",
        ),
        ({"name": "gru", "implementation": "cudnn"}, "encoder.implementation='cudnn': expected one of 'fused', "),
        ({"name": "rnn", "nonlinearity": "sigmoid"}, "encoder.nonlinearity='sigmoid': expected one of 'tanh', 'relu'"),
        ({"name": "rnn", "dropout": 1.0}, r"encoder.dropout=1.0: expected a number in \[0, 1\)"),
        ({"name": "gru", "num_layers": "two"}, "encoder.num_layers='two': expected an integer >= 1"),
        ({"name": "gru", "hidden_size": -1}, "encoder.hidden_size=-1: expected an integer >= 1"),
        ({"name": "gru", "bidirectional": "yes"}, "encoder.bidirectional='yes': expected true or false"),
    ],
)
def test_invalid_options_fail_clearly(options, message):
    with pytest.raises(ConfigError, match=message):
        ENCODERS.build(options, "encoder", input_size=3)


@pytest.mark.parametrize(("kind", "implementation"), [("lstm", "fused"), ("gru", "fused"), ("lstm", "reference")])
def test_weight_drop_runs_on_recurrent_matrices_with_one_mask_per_call(kind, implementation):
    config = {"name": kind, "hidden_size": 6, "num_layers": 2, "weight_drop": 0.5, "implementation": implementation}
    encoder = ENCODERS.build(config, input_size=3)
    x, lengths = torch.randn(4, 7, 3), torch.tensor([7, 5, 7, 2])
    recurrent = [name for name, _ in encoder.rnn.named_parameters() if name.rsplit(".", 1)[-1].startswith("weight_hh")]
    # The reference: a copy whose recurrent matrices are dropped by the same draws, run without weight drop.
    plain = ENCODERS.build({**config, "weight_drop": 0.0}, input_size=3)
    plain.load_state_dict(encoder.state_dict())
    torch.manual_seed(5)
    masks = {
        name: torch.nn.functional.dropout(torch.ones_like(dict(encoder.rnn.named_parameters())[name]), 0.5)
        for name in recurrent
    }
    with torch.no_grad():
        for name, param in plain.rnn.named_parameters():
            if name in masks:
                param.mul_(masks[name])
    torch.manual_seed(5)
    dropped, _ = encoder.train()(x, lengths)
    expected, _ = plain.train()(x, lengths)  # no dropout between layers: config dropout is 0
    torch.testing.assert_close(dropped, expected)
    dropped.sum().backward()  # the fused kernel's gradients reach the raw matrices, zero where dropped
    for name in recurrent:
        grad = dict(encoder.rnn.named_parameters())[name].grad
        assert grad is not None and bool((grad[masks[name] == 0] == 0).all()) and grad.abs().sum() > 0
    plain.load_state_dict(encoder.state_dict())  # evaluation: no mask at all
    torch.testing.assert_close(encoder.eval()(x, lengths)[0], plain.eval()(x, lengths)[0])


def lstm_encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return ENCODERS.build({"name": "lstm", "hidden_size": 32, "num_layers": 2}, input_size=8).eval()


def onednn_enabled_in(encoder, x) -> bool:
    with encoder.kernel_for(x):
        return torch.backends.mkldnn.enabled


def test_one_fp32_decoding_step_runs_pytorchs_lstm_kernel_and_everything_else_onednns():
    encoder, one_step, sequence = lstm_encoder(), torch.randn(3, 1, 8), torch.randn(3, 5, 8)
    enabled = torch.backends.mkldnn.enabled
    assert not onednn_enabled_in(encoder, one_step)
    assert onednn_enabled_in(encoder, sequence) == enabled  # a sequence: oneDNN's, as PyTorch chooses
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert onednn_enabled_in(encoder, one_step) == enabled  # bf16 products are oneDNN's
    assert onednn_enabled_in(encoder.to(torch.bfloat16), one_step.bfloat16()) == enabled
    assert torch.backends.mkldnn.enabled == enabled  # left as it was


def test_the_one_step_kernel_switch_leaves_onednns_other_settings_as_they_were():
    encoder, before = lstm_encoder(), (torch.backends.mkldnn.deterministic, torch.backends.mkldnn.allow_tf32)
    torch.backends.mkldnn.deterministic = True  # a user's setting, not the default
    try:
        with encoder.kernel_for(torch.randn(3, 1, 8)):
            assert not torch.backends.mkldnn.enabled
            assert torch.backends.mkldnn.deterministic and torch.backends.mkldnn.allow_tf32 == before[1]
        assert torch.backends.mkldnn.deterministic
    finally:
        torch.backends.mkldnn.deterministic = before[0]


def test_step_by_step_outputs_and_state_are_the_whole_sequences():
    encoder, x = lstm_encoder(), torch.randn(3, 7, 8)
    with torch.no_grad():
        whole, whole_state = encoder(x)
        state, steps = None, []
        for t in range(x.shape[1]):
            out, state = encoder(x[:, t : t + 1], state=state)  # one step at a time, as decoding calls it
            steps.append(out)
    torch.testing.assert_close(torch.cat(steps, 1), whole, atol=1e-5, rtol=1e-5)
    for stepped, at_once in zip(state, whole_state, strict=True):
        torch.testing.assert_close(stepped, at_once, atol=1e-5, rtol=1e-5)
