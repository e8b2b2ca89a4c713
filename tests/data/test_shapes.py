"""The shapes grammar reads back what it writes, and the dataset script keeps held-out pairs out of training."""

from collections import Counter

import numpy as np
from conftest import load_script
from PIL import Image

from seqtasks.data import shapes
from seqtasks.data.captions import read_captions


def test_parse_reads_back_every_caption_the_grammar_writes():
    rng = np.random.default_rng(0)
    templates = Counter()
    for _ in range(400):
        scene = shapes.random_scene(rng)
        for text in shapes.captions(scene, 6, rng):
            assert shapes.parse(text) == shapes.objects(scene), text
            templates[(len(scene), text.startswith("there is"), any(r in text for r in shapes.RELATION.values()))] += 1
    # every template of every scene size was drawn (3 per size; 2 for one shape, whose third names its place)
    assert len(templates) == 8, templates


def test_parse_keeps_what_a_wrong_caption_says():
    assert shapes.parse("a small red circle left of a square") == (
        ("large", None, "square"),
        ("small", "red", "circle"),
    )
    assert shapes.parse("a big blue square") == shapes.parse("a blue square") == (("large", "blue", "square"),)
    assert shapes.parse("nothing to see") == ()


def test_render_draws_each_shape_in_its_colour_at_its_place():
    scene = (shapes.Shape("square", "red", "large", "left"), shapes.Shape("circle", "blue", "small", "right"))
    image = np.asarray(shapes.render(scene, np.random.default_rng(0)), dtype=int)
    assert image.shape == (64, 64, 3)
    left, right = image[32, 14], image[32, 50]  # the centres of the two places
    assert left[0] > 180 and left[2] < 80 and right[2] > 200 and right[0] < 100


def test_the_script_is_deterministic_and_holds_out_disjoint_pairs_for_val_and_test(tmp_path):
    script = load_script("make_shapes_captions")
    for out in (tmp_path / "a", tmp_path / "b"):
        (out / "images").mkdir(parents=True)
        for split, count in (("train", 12), ("val", 4), ("test", 6)):
            script.write_split(out, split, count, 2, seed=3)
    assert (tmp_path / "a" / "train.tsv").read_bytes() == (tmp_path / "b" / "train.tsv").read_bytes()
    assert (tmp_path / "a" / "images" / "test_00005.png").read_bytes() == (
        tmp_path / "b" / "images" / "test_00005.png"
    ).read_bytes()
    train, val, test = (read_captions(tmp_path / "a" / f"{split}.tsv", 64) for split in ("train", "val", "test"))

    def held(split, pairs):
        return [any((c, s) in pairs for _, c, s in shapes.parse(caps[0])) for caps in split.captions]

    assert not script.HELD_OUT["val"] & script.HELD_OUT["test"]
    assert held(val, script.HELD_OUT["val"]) == [False, True] * 2 and not any(held(val, script.HELD_OUT["test"]))
    assert held(test, script.HELD_OUT["test"]) == [False, True] * 3 and not any(held(test, script.HELD_OUT["val"]))
    every_pair = script.HELD_OUT["val"] | script.HELD_OUT["test"]
    assert not any(held(train, every_pair))
    assert len(train) == 12 and all(1 <= len(caps) <= 2 for caps in train.captions)
    assert Image.open(train.paths[0]).size == (64, 64)
