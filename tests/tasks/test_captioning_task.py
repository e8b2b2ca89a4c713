"""Captioning end to end on a toy set small enough to learn exactly: one shape per image, a large
red circle or a small blue square at any of the four places, each with one caption. One real
`python -m seqtasks task=captioning` run serves the run, predict and evaluate tests here; the
decoder's padding invariance is checked on an untrained model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FP32, command, train

from seqtasks.configuration.registry import TASKS
from seqtasks.data import shapes
from seqtasks.decoding import Greedy
from seqtasks.errors import ConfigError
from seqtasks.runtime.build import container
from seqtasks.runtime.monitor import checked_monitor
from seqtasks.runtime.report import write_report
from seqtasks.tokenizers import WordTokenizer

TOY = {"a big red circle": ("circle", "red", "large"), "a small blue square": ("square", "blue", "small")}

TINY_CAPTIONING = [
    "task=captioning",
    "data.image_size=32",
    "data.max_tokens=100",
    "image_encoder.channels=[8,16,16]",
    "head.embedding_dim=16",
    "head.rnn.hidden_size=32",
    "head.rnn.dropout=0",
    "head.dropout=0",
    "head.word_dropout=0",  # the toy is learned exactly in 12 epochs; hiding words slows that
    "task.label_smoothing=0",
    "task.image_dropout=0",  # every caption with its image: guidance=... must then be refused
    "task.guidance=1",
    "task.hidden_word_bonus=null",  # no word dropout, so no hidden-word run: its refusal is tested below
    "task.optimizer.lr=0.01",
    "task.scheduler.warmup_steps=5",
    "trainer.max_epochs=12",
    "trainer.max_time=null",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "early_stopping.patience=null",
    "attention_images.sentences=1",
    "decoding.beam_size=2",
    "logger=[]",
    FP32,
]


def write_toy(directory: Path, count: int, seed: int, captions: dict[str, str] | None = None) -> Path:
    """count images, alternately of the two toy captions, at random places -> their TSV. captions:
    what to write instead of each toy caption (a user's own words)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(count):
        text = list(TOY)[n % 2]
        shape, colour, size = TOY[text]
        scene = (shapes.Shape(shape, colour, size, str(rng.choice(shapes.PLACES))),)
        shapes.render(scene, rng).save(directory / f"{n}.png")
        rows.append(f"{n}.png\t{(captions or {}).get(text, text)}\n")
    (directory / "captions.tsv").write_text("".join(rows))
    return directory / "captions.tsv"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    files = [f"data.{split}={write_toy(root / split, n, seed)}" for split, n, seed in (("train", 64, 0), ("val", 8, 1))]
    train(*TINY_CAPTIONING, *files, f"data.test={root / 'val' / 'captions.tsv'}", run_dir=root / "run")
    return root


def test_the_run_learns_the_toy_captions_exactly(toy_run):
    metrics = json.loads((toy_run / "run" / "metrics.json").read_text())
    assert metrics["val/bleu"] == pytest.approx(100) and metrics["test/bleu"] == pytest.approx(100)
    assert metrics["test/bleu_signature"].startswith("nrefs:1|")
    assert {"test/chrf", "test/loss", "val/loss"} <= set(metrics)
    assert (toy_run / "run" / "attention" / "image_0.png").is_file()
    logged = {k.removeprefix("val/") for k, v in metrics.items() if k.startswith("val/") and isinstance(v, float)}
    assert logged == set(TASKS.get("captioning").validation_metrics({"attributes": "shapes"}))  # as it declares
    assert "checkpoints are selected by `val/attr_acc` (max)" in (toy_run / "run" / "report.md").read_text()


def test_a_redrawn_report_names_the_metric_the_run_selected_by(toy_run):
    write_report(toy_run / "run")  # from the run's config.yaml alone
    assert "checkpoints are selected by `val/attr_acc` (max)" in (toy_run / "run" / "report.md").read_text()


def test_predict_writes_one_caption_per_input_line(toy_run, tmp_path):
    ckpt = toy_run / "run" / "checkpoints" / "best.ckpt"
    images = write_toy(tmp_path / "new", 4, seed=5).parent
    listing = images / "images.txt"
    listing.write_text("0.png\n\n1.png\n2.png\n\n3.png\n")  # relative to the listing, with empty lines
    out = tmp_path / "captions.txt"
    command("seqtasks.predict", f"ckpt={ckpt}", f"input={listing}", f"output={out}", "decoding=greedy")
    expected = ["a big red circle", "", "a small blue square", "a big red circle", "", "a small blue square"]
    assert out.read_text().split("\n") == [*expected, ""]
    n_best = command("seqtasks.predict", f"ckpt={ckpt}", f"input={listing}", "decoding=beam", "decoding.n_best=2")
    lines = n_best.stdout.splitlines()
    assert len(lines) == 2 * 4 + 2 and lines[0].startswith("0 ||| a big red circle ||| ")
    assert lines[2] == "1 |||  ||| 0.0000"  # an empty line keeps its place


def test_an_unreadable_image_names_the_input_file_and_line(toy_run, tmp_path):
    ckpt = toy_run / "run" / "checkpoints" / "best.ckpt"
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    write_toy(tmp_path, 1, seed=0)
    listing = tmp_path / "images.txt"
    listing.write_text("0.png\nbroken.png\n")
    result = command("seqtasks.predict", f"ckpt={ckpt}", f"input={listing}", check=False)
    assert result.returncode == 2
    assert f"error: {listing}:2: cannot read image {tmp_path / 'broken.png'}" in result.stderr


def test_guidance_of_a_model_trained_on_every_image_fails_in_one_line(toy_run, tmp_path):
    ckpt = toy_run / "run" / "checkpoints" / "best.ckpt"
    listing = write_toy(tmp_path, 1, seed=0).parent / "images.txt"
    listing.write_text("0.png\n")
    assert command("seqtasks.predict", f"ckpt={ckpt}", f"input={listing}", "guidance=1").stdout == "a big red circle\n"
    for module, args in (("seqtasks.predict", [f"input={listing}"]), ("seqtasks.evaluate", [])):
        result = command(module, f"ckpt={ckpt}", *args, "guidance=2", check=False)
        assert result.returncode == 2
        assert result.stderr.startswith("error: guidance=2.0 weighs the decoder against its captions' prior")


def test_the_hidden_word_run_of_a_model_trained_without_word_dropout_fails_in_one_line(toy_run, tmp_path):
    ckpt = toy_run / "run" / "checkpoints" / "best.ckpt"
    listing = write_toy(tmp_path, 1, seed=0).parent / "images.txt"
    listing.write_text("0.png\n")
    off = command("seqtasks.predict", f"ckpt={ckpt}", f"input={listing}", "hidden_word_bonus=false")
    assert off.stdout == "a big red circle\n"
    result = command("seqtasks.predict", f"ckpt={ckpt}", f"input={listing}", "hidden_word_bonus=0.5", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: hidden_word_bonus=0.5 reads the decoder with its previous word hidden")


def test_evaluate_scores_a_new_captions_file(toy_run, tmp_path):
    ckpt = toy_run / "run" / "checkpoints" / "best.ckpt"
    listing = write_toy(tmp_path, 6, seed=9)
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(lines[:-1] + [lines[-1].split("\t")[0] + "\ta big blue circle"]) + "\n")
    metrics = json.loads(command("seqtasks.evaluate", f"ckpt={ckpt}", f"test={listing}", "decoding=greedy").stdout)
    # the model says "a small blue square" for the last image, whose only reference is now wrong
    assert metrics["test/attr_acc"] == pytest.approx(5 / 6) and 50 < metrics["test/bleu"] < 100
    # every colour-shape pair of the new file was in training, except the wrong reference's
    assert metrics["test/heldout_share"] == pytest.approx(1 / 6) and metrics["test/attr_acc_heldout"] == 0


# A user's own captions, which the shapes grammar cannot read.
OWN_WORDS = {"a big red circle": "a photo of something nice", "a small blue square": "another picture of a thing"}


@pytest.fixture(scope="module")
def own_captions(tmp_path_factory) -> list[str]:
    """data.* of a tiny set of images with captions outside the shapes grammar."""
    root = tmp_path_factory.mktemp("own")
    return [
        f"data.{split}={write_toy(root / split, n, seed, OWN_WORDS)}"
        for split, n, seed in (("train", 8, 0), ("val", 4, 1))
    ]


def test_attribute_accuracy_is_refused_before_training_on_captions_the_grammar_cannot_read(own_captions, tmp_path):
    with pytest.raises(ConfigError) as refused:  # the recipe's task.attributes=shapes
        train(*TINY_CAPTIONING, *own_captions, "data.test=null", "trainer.max_epochs=1", run_dir=tmp_path)
    assert str(refused.value).startswith("task.attributes=shapes: no validation caption (")
    assert str(refused.value).endswith("set task.attributes=null (checkpoints are then selected by val/bleu)")
    assert not (tmp_path / "checkpoints" / "best.ckpt").exists()


def test_captions_of_ones_own_are_scored_and_selected_by_bleu(own_captions, tmp_path):
    overrides = [*TINY_CAPTIONING, *own_captions, "data.test=null", "trainer.max_epochs=1", "task.attributes=null"]
    metrics = train(*overrides, run_dir=tmp_path)
    assert not any("attr_acc" in key for key in metrics)
    logged = {k.removeprefix("val/") for k, v in metrics.items() if k.startswith("val/") and isinstance(v, float)}
    assert logged == set(TASKS.get("captioning").validation_metrics({"attributes": None}))  # as it declares
    assert "checkpoints are selected by `val/bleu` (max)" in (tmp_path / "report.md").read_text()


def test_attribute_accuracy_selects_checkpoints_where_it_is_scored_bleu_elsewhere(compose_config):
    for overrides, selected in (([], "val/attr_acc"), (["task.attributes=null"], "val/bleu")):
        cfg = compose_config(["task=captioning", *overrides])
        chosen = checked_monitor(
            TASKS.get("captioning"), container(cfg.task), cfg.checkpoint.monitor, cfg.checkpoint.mode
        )
        assert chosen == (selected, "max")


def test_attribute_accuracy_counts_only_the_images_whose_caption_the_grammar_reads():
    task = untrained({"name": "precomputed", "size": 8}, FEATURES, attributes="shapes")

    def scores(*pairs: tuple[str, str]) -> dict[str, float]:  # (decoded caption, reference) per image
        return task.score([(caption, [reference], 1.0, 1) for caption, reference in pairs], "val")

    own = ("a photo of something nice", "a photo of something nice")
    assert not any("attr_acc" in key for key in scores(own, own))  # nothing the grammar reads: not 1.0
    assert scores(own, ("a big red circle", "a small blue square"))["attr_acc"] == 0  # of 1 image, not 1 of 2


def untrained(image_encoder: dict, inputs: dict, word_dropout: float = 0.0, decoding: dict | None = None, **options):
    tokenizer = WordTokenizer().fit(list(TOY)).state()
    head = {
        "name": "decoder",
        "embedding_dim": 8,
        "rnn": {"name": "gru", "hidden_size": 12, "num_layers": 1},
        "word_dropout": word_dropout,
    }
    return TASKS.build(
        {"name": "captioning", "optimizer": {"_target_": "torch.optim.Adam"}, **options},
        tokenizers={"text": tokenizer},
        image_encoder=image_encoder,
        head={**head, "attention": {"name": "additive"}, "dropout": 0.0},
        decoding=decoding or {"name": "greedy"},
        inputs=inputs,
    ).eval()


def test_the_decoder_is_invariant_to_padded_regions_and_padded_captions():
    torch.manual_seed(0)
    task = untrained({"name": "precomputed", "size": 8}, {"kind": "features", "size": 6, "image_size": 64})
    alone_features, other = torch.randn(1, 3, 6), torch.randn(1, 5, 6)
    alone_caption = torch.tensor([[2, 5, 6]])
    with torch.no_grad():
        alone, _ = task.decoder(alone_caption, task.encode(alone_features, torch.tensor([3])))  # (1, 3, V)
        features = torch.cat([torch.cat([alone_features, torch.full((1, 2, 6), 9.0)], 1), other])  # (2, 5, 6)
        captions = torch.tensor([[2, 5, 6, 0, 0, 0], [2, 6, 5, 6, 5, 6]])  # row 0 padded
        batched, weights = task.decoder(captions, task.encode(features, torch.tensor([3, 5])))
    torch.testing.assert_close(batched[0, :3], alone[0], atol=1e-5, rtol=1e-5)
    assert (weights[0, :, 3:] == 0).all()  # padded regions get no attention at all


def test_a_cnn_captioner_refuses_feature_arrays():
    with pytest.raises(ConfigError, match="image_encoder=cnn reads image inputs, but the data gives features inputs"):
        untrained({"name": "cnn", "channels": [8]}, {"kind": "features", "size": 6, "image_size": 64})


FEATURES = {"kind": "features", "size": 6, "image_size": 64}


def test_guidance_needs_captions_trained_without_their_image():
    with pytest.raises(ConfigError, match=r"task.guidance=2.0 .* train with task.image_dropout > 0"):
        untrained({"name": "precomputed", "size": 8}, FEATURES, guidance=2.0)


def test_a_guided_step_extrapolates_from_the_decoder_on_no_image_to_the_decoder_on_the_image():
    torch.manual_seed(0)
    task = untrained({"name": "precomputed", "size": 8}, FEATURES, image_dropout=0.1, guidance=2.5)
    features, regions, bos = torch.randn(2, 5, 6), torch.tensor([5, 3]), torch.full((2,), task.bos_id)
    with torch.no_grad():
        grid, mask = task.image_grid(features, regions)
        on_image, _ = task.decoder.step(bos, task.start(grid, mask))  # (2, V)
        on_none, _ = task.decoder.step(bos, task.start(torch.zeros_like(grid), mask))
        guided, _ = task.decoding_step(bos, task.search_state(grid, mask))
    torch.testing.assert_close(guided, (on_none + 2.5 * (on_image - on_none)).log_softmax(-1))
    assert not torch.allclose(guided, on_image)


def test_the_hidden_word_run_needs_a_decoder_trained_with_word_dropout():
    with pytest.raises(ConfigError, match=r"task.hidden_word_bonus=0.5 .* train with head.word_dropout > 0"):
        untrained({"name": "precomputed", "size": 8}, FEATURES, hidden_word_bonus=0.5)


def test_a_hidden_word_step_takes_the_larger_score_of_the_guided_step_on_the_word_and_on_unk():
    torch.manual_seed(0)
    task = untrained(
        {"name": "precomputed", "size": 8},
        FEATURES,
        word_dropout=0.25,
        image_dropout=0.1,
        guidance=2.5,
        hidden_word_bonus=0.5,
    )
    features, regions = torch.randn(2, 5, 6), torch.tensor([5, 3])
    words = torch.tensor([task.target_tokenizer.vocab.id("red")] * 2)
    unk = torch.full_like(words, task.decoder.unk_id)
    with torch.no_grad():
        grid, mask = task.image_grid(features, regions)

        def guided(prev):  # the guided step written out, as the guidance test above checks it
            on_image, _ = task.decoder.step(prev, task.start(grid, mask))  # (2, V)
            on_none, _ = task.decoder.step(prev, task.start(torch.zeros_like(grid), mask))
            return (on_none + 2.5 * (on_image - on_none)).log_softmax(-1)

        stepped, state = task.decoding_step(words, task.search_state(grid, mask))
        _, own_state = task.base_step(words, task.search_state(grid, mask))
    hidden = guided(unk).scatter(1, words[:, None], float("-inf"))  # no vote for the word it hid
    torch.testing.assert_close(stepped, torch.maximum(guided(words), hidden + 0.5).log_softmax(-1))
    torch.testing.assert_close(state["input"]["rnn"], own_state["input"]["rnn"])  # the search goes on from "red"


def test_validation_decodes_greedily_unless_told_to_decode_as_the_test_does():
    greedy = untrained({"name": "precomputed", "size": 8}, FEATURES, decoding={"name": "beam", "beam_size": 3})
    assert isinstance(greedy.stage_strategy("val"), Greedy)
    assert greedy.stage_strategy("test") is greedy.strategy
    like_test = untrained(
        {"name": "precomputed", "size": 8}, FEATURES, decoding={"name": "beam", "beam_size": 3}, val_decoding="test"
    )
    assert like_test.stage_strategy("val") is like_test.strategy
    assert like_test.strategy.beam_size == 3


def test_image_dropout_hides_images_in_training_only():
    torch.manual_seed(0)
    task = untrained({"name": "precomputed", "size": 8}, FEATURES, image_dropout=0.5)
    batch = SimpleNamespace(
        inputs=torch.randn(64, 5, 6),
        regions=torch.full((64,), 5),
        target_in=torch.full((64, 3), task.bos_id),
        target_out=torch.full((64, 3), task.eos_id),
        num_tokens=192,
    )
    with torch.no_grad():
        evaluated = {float(task.training_loss(batch)) for _ in range(2)}
        task.train()
        losses = {float(task.training_loss(batch)) for _ in range(3)}
    assert len(evaluated) == 1 and len(losses) == 3  # a new half of the images hidden at each training step
