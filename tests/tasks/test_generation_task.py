"""Conditional generation (task=generation): decoding steps agree with teacher forcing, strategies
agree with each other, the category conditions the output, and a tiny run end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from conftest import command, seqtasks, train, validate_in_one_process

from seqtasks.configuration.registry import TASKS
from seqtasks.data.batching import pad_sequences
from seqtasks.data.classification import ClassificationBatch
from seqtasks.decoding import BeamSearch, Greedy
from seqtasks.decoding.guidance import GuidedStep
from seqtasks.errors import ConfigError
from seqtasks.runtime.build import container, load_task
from seqtasks.tokenizers import CharTokenizer, LabelVocabulary

ADAM = {"_target_": "torch.optim.Adam", "lr": 0.03}


def make_task(encoder: str = "lstm", feed_category: bool = True, **options):
    tokenizers = {"text": CharTokenizer().fit(["abcde"]).state(), "labels": LabelVocabulary().fit(["A", "B"]).state()}
    encoder_cfg = {"name": encoder, "hidden_size": 16, "num_layers": 2}
    return TASKS.build(
        {
            "name": "generation",
            "embedding_dim": 8,
            "category_dim": 4,
            "feed_category": feed_category,
            "optimizer": ADAM,
            "max_length": 6,
            **options,
        },
        tokenizers=tokenizers,
        encoder=encoder_cfg,
        head={"name": "lm"},
        decoding={"name": "sampling", "temperature": 0.8},
    )


def batch_of(task, texts: list[str], labels: list[str]) -> ClassificationBatch:
    tokens, lengths = pad_sequences([task.tokenizer.encode(t) for t in texts], task.pad_id)
    return ClassificationBatch(tokens, lengths, torch.tensor(task.category_ids(labels)), list(range(len(texts))))


@pytest.mark.parametrize(("encoder", "feed"), [("lstm", True), ("gru", False)])
def test_step_by_step_log_probs_equal_the_teacher_forced_forward(encoder, feed):
    torch.manual_seed(0)
    task = make_task(encoder, feed).eval()
    batch = batch_of(task, ["abca", "de"], ["B", "A"])
    with torch.no_grad():
        expected = task.next_token_log_probs(task(batch.tokens, batch.lengths, batch.labels))  # (B, T+1, V)
        state = task.initial_state(batch.labels)
        inputs = torch.cat([torch.full((2, 1), task.bos_id), batch.tokens], dim=1)
        for t in range(int(batch.lengths.max()) + 1):
            log_probs, state = task.step_function(inputs[:, t], state)
            for row, length in enumerate(batch.lengths.tolist()):
                if t <= length:  # positions up to the row's <eos> prediction
                    torch.testing.assert_close(log_probs[row], expected[row, t])


def test_loss_predicts_eos_and_ignores_padding():
    task = make_task().eval()
    batch = batch_of(task, ["abc", "d"], ["A", "B"])
    targets = task.targets(batch.tokens, batch.lengths)
    assert targets.tolist()[1] == [task.tokenizer.vocab.id("d"), task.eos_id, task.pad_id, task.pad_id]
    nll = task.name_nll(batch)  # (B,): per name, its characters and its <eos>, padding left out
    logits = task(batch.tokens, batch.lengths, batch.labels)
    alone = task(batch.tokens[1:, :1], batch.lengths[1:], batch.labels[1:])  # "d" without the padding
    expected = torch.nn.functional.cross_entropy(alone[0], targets[1, :2], reduction="sum")
    torch.testing.assert_close(nll[1], expected)
    assert logits.shape[1] == 4


def test_greedy_equals_beam_of_one_and_unknown_categories_are_named():
    torch.manual_seed(1)
    task = make_task()
    greedy = task.generate_for(["A", "B", "A"], Greedy(), num_samples=2)
    beam = task.generate_for(["A", "B", "A"], BeamSearch(beam_size=1, length_penalty=0.0))
    assert [texts[0] for texts in greedy] == [texts[0] for texts in beam]
    assert all(len(texts) == 2 and texts[0] == texts[1] for texts in greedy)
    assert len(task.generate_for(["B"], num_samples=5, generator=torch.Generator().manual_seed(0))[0]) == 5
    with pytest.raises(ConfigError, match="unknown category 'C'; choose from: A, B"):
        task.generate_for(["A", "C"])
    with pytest.raises(ConfigError, match="at most beam_size=2 hypotheses per row; asked for 3"):
        task.generate_for(["A"], BeamSearch(beam_size=2), num_samples=3)
    two_best = task.generate_for(["A"], BeamSearch(beam_size=2), num_samples=2)[0]
    assert len(two_best) == 2 and two_best[0] == task.generate_for(["A"], BeamSearch(beam_size=2))[0][0]


def test_the_category_conditions_the_output():
    torch.manual_seed(0)
    task = make_task()
    batch = batch_of(task, ["aaa", "bbb"], ["A", "B"])
    optimizer = torch.optim.Adam(task.parameters(), lr=0.03)
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            task(batch.tokens, batch.lengths, batch.labels).flatten(0, 1),
            task.targets(batch.tokens, batch.lengths).flatten(),
            ignore_index=task.pad_id,
        )
        loss.backward()
        optimizer.step()
    assert task.generate_for(["A", "B", "B"], Greedy()) == [["aaa"], ["bbb"], ["bbb"]]
    assert task.generate_for(["B", "A"], BeamSearch(beam_size=3)) == [["bbb"], ["aaa"]]


def test_guidance_needs_names_trained_without_their_category():
    with pytest.raises(ConfigError, match=r"task.guidance=2.0 .* train with task.category_dropout > 0"):
        make_task(guidance=2.0)
    task = make_task(category_dropout=0.1)
    with pytest.raises(ConfigError, match=r"guidance=-1.0: a guidance weight is >= 0"):
        task.use_guidance(-1.0)


def test_a_guided_step_extrapolates_from_the_prior_to_the_category_and_never_emits_pad_or_bos():
    torch.manual_seed(0)
    task = make_task(category_dropout=0.1, guidance=2.5).eval()
    categories = torch.tensor(task.category_ids(["A", "B"]))
    bos = torch.full((2,), task.bos_id)
    with torch.no_grad():
        on_category, _ = task.step_function(bos, task.initial_state(categories))  # (2, V)
        on_none, _ = task.step_function(bos, task.initial_state(torch.full((2,), task.none_category)))
        guided, _ = GuidedStep(task.step_function, 2.5)(
            bos, {"input": task.initial_state(categories), "none": task.initial_state(torch.full((2,), 2))}
        )
    emitted = torch.isfinite(on_category)
    expected = (on_none + 2.5 * (on_category - on_none)).masked_fill(~emitted, float("-inf")).log_softmax(-1)
    torch.testing.assert_close(guided, expected)
    assert not guided.isnan().any() and guided[:, task.not_emitted_ids].isneginf().all()
    # Sampling runs the guided step: guidance 1 samples as the category alone does.
    samples = task.generate_for(["A", "B"], num_samples=8, generator=torch.Generator().manual_seed(1))
    task.use_guidance(1.0)
    alone = task.generate_for(["A", "B"], num_samples=8, generator=torch.Generator().manual_seed(1))
    assert samples != alone and all(len(row) == 8 for row in samples)


def test_category_dropout_hides_categories_in_training_only():
    torch.manual_seed(0)
    task = make_task(category_dropout=0.5).eval()
    batch = batch_of(task, ["abca", "de"] * 32, ["A", "B"] * 32)
    with torch.no_grad():
        evaluated = {float(task.training_loss(batch)) for _ in range(2)}
        task.train()
        task.dropout.p = 0.0  # only the category dropout draws anything
        losses = {float(task.training_loss(batch)) for _ in range(3)}
    assert len(evaluated) == 1 and len(losses) == 3  # another half of the categories hidden at each step
    assert task.category_embedding.num_embeddings == 3 and make_task().category_embedding.num_embeddings == 2


def test_sample_metrics_with_a_classifier_handed_in_as_a_callable():
    def classify(texts):  # says "A" for names with an "a", else "B"; "" for an empty name
        return [("A" if "a" in t else "B") if t else "" for t in texts]

    task = make_task(sample_metrics={"per_category": 20}, training_names=["ab", "ba"], agreement=classify)
    assert "agreement" not in task.hparams  # a callable is never saved with the checkpoint
    scores, rows = task.sample_scores()
    assert len(rows) == 40 and [r[0] for r in rows[:20]] == ["A"] * 20
    texts = [text for _, text, _, _ in rows]
    assert scores["novelty"] == pytest.approx(sum(bool(t) and t not in {"ab", "ba"} for t in texts) / 40)
    agree = sum((("A" if "a" in t else "B") if t else "") == c for c, t, _, _ in rows)
    assert scores["agreement"] == pytest.approx(agree / 40) and 0 < scores["distinct"] <= 1


def test_training_names_and_category_weights_flow_in_from_the_data():
    data = SimpleNamespace(read=lambda split: [("ab", "A"), ("ba", "A"), ("abc", "A"), ("e", "B")])
    inputs = TASKS.get("generation").data_inputs(data)
    assert inputs == {"training_names": ["ab", "abc", "ba", "e"], "category_counts": {"A": 3, "B": 1}}
    task = make_task(balance_categories=1.0, dropout=0.0, **inputs)
    assert task.training_names == {"ab", "ba", "abc", "e"} and task.hparams.training_names == ["ab", "abc", "ba", "e"]
    # count ** -1, scaled to a mean of 1 per training name: every category weighs the same in total.
    torch.testing.assert_close(task.category_weights, torch.tensor([2 / 3, 2.0]))
    batch = batch_of(task, ["ab", "e"], ["A", "B"])
    nll = (
        torch.nn.functional.cross_entropy(
            task(batch.tokens, batch.lengths, batch.labels).flatten(0, 1),
            task.targets(batch.tokens, batch.lengths).flatten(),
            ignore_index=task.pad_id,
            reduction="none",
        )
        .view(2, -1)
        .sum(1)
    )
    expected = (nll[0] * 2 / 3 + nll[1] * 2) / (3 * 2 / 3 + 2 * 2)
    torch.testing.assert_close(task.training_loss(batch), expected)


def test_bidirectional_encoder_is_refused():
    tokenizers = {"text": CharTokenizer().fit(["ab"]).state(), "labels": LabelVocabulary().fit(["A"]).state()}
    with pytest.raises(ConfigError, match="bidirectional=false"):
        TASKS.build(
            {"name": "generation", "optimizer": ADAM},
            tokenizers=tokenizers,
            encoder={"name": "gru", "hidden_size": 8, "bidirectional": True},
            head={"name": "lm"},
            decoding={"name": "greedy"},
        )


NAMES = {
    "Russian": [
        f"{stem}{end}"
        for stem in ("Ivan", "Petr", "Smirn", "Volk", "Sokol", "Kuzn", "Pop", "Lebed")
        for end in ("ov", "ova")
    ],
    "Spanish": [
        f"{stem}{end}"
        for stem in ("Gonzal", "Rodrigu", "Fernand", "Lop", "Martin", "Sanch", "Per", "Gom")
        for end in ("ez", "es")
    ],
}


def test_a_tiny_run_end_to_end_and_the_checkpoint_reloads(compose_config, tmp_path):
    folder = tmp_path / "data" / "names" / "by_language"
    folder.mkdir(parents=True)
    for language, names in NAMES.items():
        (folder / f"{language}.txt").write_text("\n".join(names) + "\n")
    overrides = [
        "task=generation",
        f"data.root={tmp_path / 'data'}",
        "encoder.hidden_size=16",
        "encoder.num_layers=1",
        "encoder.dropout=0",
        "task.embedding_dim=8",
        "task.category_dim=4",
        "task.sample_metrics.per_category=10",
        "data.max_tokens=60",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        "logger=csv",
    ]
    cfg = compose_config(overrides)
    assert cfg.decoding.temperature == 0.8 and not cfg.encoder.bidirectional
    metrics = train(*overrides, run_dir=tmp_path / "run")
    assert {"val/loss", "val/novelty", "val/distinct", "test/loss", "test/novelty"} <= set(metrics)
    assert "test/agreement" not in metrics  # no classifier given
    rows = (tmp_path / "run" / "samples.tsv").read_text().splitlines()
    assert rows[0] == "category\tsample\tnovel\tclassified_as" and len(rows) == 1 + 2 * 10

    task = load_task(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert task.training_names == {name for name, _ in task_data_train(cfg)}
    # The test's samples come again from the reloaded weights: same seed, same temperature.
    reloaded = ["\t".join((c, t, str(int(n)), p)) for c, t, n, p in task.sample_scores()[1]]
    assert reloaded == rows[1:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test/novelty"] == metrics["test/novelty"]

    # predict: a category per line -> num_samples samples, tab-separated; an empty line stays empty.
    first, second = task.categories
    result = command(
        "seqtasks.predict",
        f"ckpt={tmp_path / 'run' / 'checkpoints' / 'best.ckpt'}",
        "input=-",
        "num_samples=3",
        stdin=f"{first}\n\n{second}\n",
    )
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert all(len(line.split("\t")) == 3 for line in (lines[0], lines[2]))


def task_data_train(cfg) -> list[tuple[str, str]]:
    from seqtasks.configuration.registry import DATASETS

    return DATASETS.build(container(cfg.data)).read("train")


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_scores_every_name_once(tmp_path):
    folder = tmp_path / "data" / "names" / "by_language"
    folder.mkdir(parents=True)
    for language, names in NAMES.items():
        (folder / f"{language}.txt").write_text("\n".join(names) + "\n")
    seqtasks(
        "task=generation",
        f"data.root={tmp_path / 'data'}",
        "encoder.hidden_size=16",
        "encoder.num_layers=1",
        "task.embedding_dim=8",
        "task.category_dim=4",
        "task.sample_metrics.per_category=4",
        "data.max_tokens=24",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "logger=[]",
        "trainer.precision=32-true",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    single = validate_in_one_process(tmp_path / "run" / "checkpoints" / "best.ckpt")
    for key in ("val/loss", "val/novelty", "val/distinct"):
        assert metrics[key] == pytest.approx(single[key], abs=1e-6), key
