"""The language-model task: truncated BPTT state carry, non-finite losses, perplexity, generation."""

import math

import pytest
import torch
from conftest import quiet_trainer

from seqtasks.configuration.registry import TASKS
from seqtasks.data.text_stream import TextStreamData
from seqtasks.decoding import Greedy, Sampling
from seqtasks.errors import ConfigError, TrainingError
from seqtasks.runtime.build import build_task, container, load_task


def make(compose_config, tiny_text_file, *overrides):
    cfg = compose_config(
        [
            "data=text_file",
            f"data.path={tiny_text_file}",
            "encoder.hidden_size=8",
            "encoder.num_layers=1",
            "task.embedding_dim=4",
            "task.tbptt_steps=8",
            "data.batch_size=2",
            *overrides,
        ]
    )
    data = TextStreamData(**{k: v for k, v in container(cfg.data).items() if k != "name"})
    return cfg, data, build_task(cfg, data)


def trainer(tmp_path, **options):
    return quiet_trainer(default_root_dir=tmp_path, **options)


def test_hidden_state_carries_across_batches_detached_and_resets_each_epoch(compose_config, tiny_text_file, tmp_path):
    cfg, data, task = make(compose_config, tiny_text_file)
    seen = []  # (epoch, state passed in, state given out)
    run = task.run

    def recording_run(tokens, state=None):
        logits, states, new_state = run(tokens, state)
        if task.training:
            seen.append((task.current_epoch, state, new_state))
        return logits, states, new_state

    task.run = recording_run
    trainer(tmp_path, max_epochs=2, limit_train_batches=3, limit_val_batches=0).fit(task, datamodule=data)
    assert [epoch for epoch, _, _ in seen] == [0, 0, 0, 1, 1, 1]
    for index, (_, state_in, _) in enumerate(seen):
        if index % 3 == 0:
            assert state_in is None, "the carry must reset at the start of every epoch"
            continue
        previous_out = seen[index - 1][2]
        for carried, produced in zip(state_in, previous_out, strict=True):
            assert not carried.requires_grad  # detached: gradients stop at the batch boundary
            torch.testing.assert_close(carried, produced.detach())


def test_carried_state_makes_batches_one_stream(compose_config, tiny_text_file):
    # With the carry, scoring batch 2 equals scoring batches 1 and 2 as one sequence.
    _, data, task = make(compose_config, tiny_text_file)
    task.eval()
    data.use_tokenizers({"text": task.tokenizer})
    first, second = list(data.train_dataloader())[:2]
    x1, x2 = first.inputs, second.inputs
    _, state = task(x1)
    carried, _ = task(x2, state)
    whole, _ = task(torch.cat([x1, x2], dim=1))
    torch.testing.assert_close(carried, whole[:, x1.shape[1] :], atol=1e-5, rtol=0)


def nan_on_second_batch(task):
    training_loss, calls = task.training_loss, []

    def loss_with_nan(batch):
        loss = training_loss(batch)
        calls.append(1)
        return loss * float("nan") if len(calls) == 2 else loss

    task.training_loss = loss_with_nan


def test_nonfinite_loss_stops_with_a_clear_error(compose_config, tiny_text_file, tmp_path):
    _, data, task = make(compose_config, tiny_text_file)
    nan_on_second_batch(task)
    with pytest.raises(TrainingError, match=r"non-finite training loss \(nan\) at global step 1.*nonfinite_loss=skip"):
        trainer(tmp_path, max_steps=4, limit_val_batches=0).fit(task, datamodule=data)


def test_nonfinite_loss_can_skip_the_batch(compose_config, tiny_text_file, tmp_path):
    _, data, task = make(compose_config, tiny_text_file, "task.nonfinite_loss=skip")
    nan_on_second_batch(task)
    trainer(tmp_path, max_steps=3, limit_val_batches=0).fit(task, datamodule=data)
    assert task.skipped_batches == 1
    assert all(torch.isfinite(p).all() for p in task.parameters())


def test_perplexity_is_the_exponential_of_the_loss_however_large(compose_config, tiny_text_file):
    _, _, task = make(compose_config, tiny_text_file)
    assert task.score([(2.0 * 10, 10)], "val")["ppl"] == pytest.approx(math.exp(2.0))
    assert task.score([(60.0 * 10, 10)], "val")["ppl"] == pytest.approx(math.exp(60.0))
    # a diverged run's loss (1.37e32 nats) has no finite perplexity: inf, never a number below exp(loss)
    assert task.score([(1.37e32 * 10, 10)], "val")["ppl"] == math.inf


def test_bad_task_options(compose_config, tiny_text_file):
    with pytest.raises(ConfigError, match="task.nonfinite_loss='ignore': expected one of 'raise', 'skip'"):
        make(compose_config, tiny_text_file, "task.nonfinite_loss=ignore")
    with pytest.raises(ConfigError, match="bidirectional=false"):
        make(compose_config, tiny_text_file, "encoder.bidirectional=true")


def test_generation_strategies_and_checkpoint_round_trip(compose_config, tiny_text_file, tmp_path):
    _, data, task = make(compose_config, tiny_text_file)
    greedy = task.generate("First", 30, Greedy())[0]
    assert greedy.startswith("First") and len(greedy) == len("First") + 30
    assert task.generate("First", 30, Sampling(top_k=1))[0] == greedy
    samples = task.generate("First", 30, Sampling(), num_samples=3, generator=torch.Generator().manual_seed(0))
    assert len(samples) == 3 and len(set(samples)) > 1
    path = tmp_path / "model.ckpt"
    t = trainer(tmp_path, max_steps=1, limit_val_batches=0)
    t.fit(task, datamodule=data)
    t.save_checkpoint(path)
    restored = load_task(path)
    assert type(restored) is TASKS.get("language_model")
    assert restored.tokenizer.vocab.tokens == task.tokenizer.vocab.tokens
    assert restored.generate("First", 30, Greedy())[0] == task.generate("First", 30, Greedy())[0]


def test_a_subword_language_model_builds_and_never_generates_specials(compose_config, tiny_text_file):
    # The pretraining recipe of docs/scale.md: a language model over sentencepiece pieces.
    _, _, task = make(compose_config, tiny_text_file, "tokenizer=sentencepiece", "tokenizer.vocab_size=60")
    assert task.special_ids.tolist() == [0, 1, 2, 3]
    (text,) = task.generate("First", 20, generator=torch.Generator().manual_seed(0))
    assert text.startswith("First") and "<" not in text


def test_awd_regularisation_trains_and_penalises_as_its_formulas(compose_config, tiny_text_file, tmp_path):
    awd = [
        "task.embedding_dropout=0.1",
        "task.input_dropout=0.2",
        "task.output_dropout=0.3",
        "task.activation_regularization=2.0",
        "task.temporal_activation_regularization=1.0",
        "encoder.weight_drop=0.5",
    ]
    cfg, data, task = make(compose_config, tiny_text_file, *awd)
    states = torch.randn(2, 5, 8)
    expected = 2.0 * (states**2).mean() + 1.0 * ((states[:, 1:] - states[:, :-1]) ** 2).mean()
    torch.testing.assert_close(task.activation_penalty(states), expected)
    trainer(tmp_path, max_steps=3, limit_val_batches=1).fit(task, datamodule=data)
    task.eval()  # evaluation: no dropout of any kind, so two passes agree
    tokens = torch.randint(0, len(task.tokenizer), (2, 6))
    torch.testing.assert_close(task(tokens)[0], task(tokens)[0])
    task.train()
    torch.manual_seed(0)
    first = task(tokens)[0]
    assert not torch.allclose(first, task(tokens)[0])  # training: the masks differ between calls


def test_tied_weights_share_one_matrix_and_need_equal_sizes(compose_config, tiny_text_file):
    _, _, task = make(compose_config, tiny_text_file, "task.tie_weights=true", "task.embedding_dim=8")
    assert task.head.project.weight is task.embedding.weight
    with pytest.raises(ConfigError, match="task.embedding_dim=8"):
        make(compose_config, tiny_text_file, "task.tie_weights=true")  # embedding 4 wide, encoder 8
