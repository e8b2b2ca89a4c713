"""Discriminative learning rates and gradual unfreezing (seqtasks/layer_rates.py): layers counted
bottom to top."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from seqtasks.layer_rates import depth, unfrozen


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


@pytest.mark.parametrize("epoch,trains", [(0, {3}), (1, {3}), (2, {2, 3}), (5, {1, 2, 3}), (6, {0, 1, 2, 3})])
def test_gradual_unfreezing_adds_one_layer_from_the_top_every_n_epochs(epoch, trains):
    depths = {"embedding.weight": 0, "encoder.rnn.weight_hh_l0": 1, "encoder.rnn.weight_ih_l1": 2, "head.bias": 3}
    assert {d for name, d in depths.items() if unfrozen(name, 2, epoch, every=2)} == trains


def test_a_frozen_layer_keeps_its_weights_while_the_layers_above_it_learn(compose_config, tiny_text_file, tmp_path):
    """Trained for three epochs with one more layer each epoch: a layer changes only from its own
    epoch on, the embeddings (depth 0) never in this run."""
    from tasks.test_language_model_task import make, trainer

    _, data, task = make(compose_config, tiny_text_file, "encoder.num_layers=2", "task.unfreeze_every_epochs=1")
    layers = {
        "embedding": lambda: task.embedding.weight,
        "layer 0": lambda: task.encoder.rnn.weight_hh_l0,
        "layer 1": lambda: task.encoder.rnn.weight_hh_l1,
        "head": lambda: next(task.head.parameters()),
    }
    snapshots = [{name: get().detach().clone() for name, get in layers.items()}]

    class Snapshot(L.Callback):
        def on_train_epoch_end(self, trainer, task):
            snapshots.append({name: get().detach().clone() for name, get in layers.items()})

    trainer(tmp_path, max_epochs=3, limit_val_batches=0, callbacks=[Snapshot()]).fit(task, datamodule=data)
    changed = [
        {name for name in layers if not torch.equal(before[name], after[name])}
        for before, after in zip(snapshots, snapshots[1:], strict=False)
    ]
    assert changed == [{"head"}, {"head", "layer 1"}, {"head", "layer 1", "layer 0"}]
