"""Discriminative learning rates (seqtasks/layer_rates.py): one rate per layer, bottom to top."""

from __future__ import annotations

import pytest

from seqtasks.layer_rates import depth


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("embedding.weight", 0),
        ("word_embedding.weight", 0),
        ("encoder.rnn.weight_ih_l0", 1),
        ("encoder.rnn.weight_hh_l1_reverse", 2),
        ("encoder.rnn.layers.2.cell.weight_hh", 3),
        ("head.project.weight", 4),
    ],
)
def test_depth_from_parameter_names(name, expected):
    assert depth(name, encoder_layers=3) == expected


def test_a_language_model_gets_one_rate_per_layer(compose_config, tiny_text_file):
    from tasks.test_language_model_task import make

    _, _, task = make(compose_config, tiny_text_file, "encoder.num_layers=2", "task.layer_lr_decay=2.0")
    task.optimizer_config = {**task.optimizer_config, "lr": 0.008}
    optimizer = task.configure_optimizers()["optimizer"]
    rates = [group["initial_lr"] for group in optimizer.param_groups]  # before the schedule's factor
    assert rates == [pytest.approx(0.001), pytest.approx(0.002), pytest.approx(0.004), pytest.approx(0.008)]
    grouped = [{id(p) for p in group["params"]} for group in optimizer.param_groups]
    assert grouped[0] == {id(task.embedding.weight)} and grouped[3] == {id(p) for p in task.head.parameters()}
    assert sum(map(len, grouped)) == len(list(task.parameters()))  # every parameter, once
