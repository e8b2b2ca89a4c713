"""Write the synthetic shapes captioning dataset (seqtasks/data/shapes.py draws and describes the scenes):

    python scripts/make_shapes_captions.py                    # -> $SEQTASKS_DATA/shapes_captions/
    python scripts/make_shapes_captions.py --out /tmp/shapes --train 500 --val 50 --test 100

<out>/images/<split>_<n>.png (64x64 RGB) and <out>/{train,val,test}.tsv of `image<TAB>caption`
lines, image paths relative to the TSV: `--captions` different paraphrases per training image,
`--references` per val/test image (the references BLEU scores against). Deterministic: the same
arguments write the same bytes.

Generalisation, not memorisation: the colour-shape pairs in HELD_OUT never occur in training
images. Half the validation images hold at least one of HELD_OUT["val"] and none of
HELD_OUT["test"]; half the test images hold at least one of HELD_OUT["test"] and none of
HELD_OUT["val"] (the task reports attribute accuracy on those apart: `val/attr_acc_heldout`,
`test/attr_acc_heldout`). Validation holds unseen pairs so that checkpoints and decoding settings
(the guidance weight) are chosen for generalisation, and different ones from the test's, so that
nothing is chosen on the combinations the test measures.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from seqtasks.data.shapes import Scene, captions, random_scene, render

# Each colour and each shape is in both sets, so that neither set is about one word.
HELD_OUT = {
    "val": {("red", "circle"), ("purple", "triangle"), ("white", "square")},
    "test": {("green", "triangle"), ("blue", "circle"), ("yellow", "square")},
}
SPLITS = ("train", "val", "test")


def held_out_pairs(scene: Scene, split: str) -> bool:
    """Whether the scene holds a colour-shape pair of HELD_OUT[split]."""
    return any((s.colour, s.shape) in HELD_OUT[split] for s in scene)


def split_scenes(split: str, count: int, rng: np.random.Generator) -> list[Scene]:
    """Scenes without another split's held-out pairs; in val and test, every other one with at least
    one of its own (train has none)."""
    others = [name for name in HELD_OUT if name != split]
    scenes = []
    while len(scenes) < count:
        scene = random_scene(rng)
        wanted = split != "train" and len(scenes) % 2 == 1
        own = split in HELD_OUT and held_out_pairs(scene, split)
        if own == wanted and not any(held_out_pairs(scene, other) for other in others):
            scenes.append(scene)
    return scenes


def write_split(out: Path, split: str, count: int, per_image: int, seed: int) -> None:
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    rows = []
    for n, scene in enumerate(split_scenes(split, count, rng)):
        name = f"images/{split}_{n:05d}.png"
        render(scene, rng).save(out / name)
        rows += [f"{name}\t{text}\n" for text in captions(scene, per_image, rng)]
    (out / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
    print(f"{split}: {count} images, {len(rows)} captions -> {out / f'{split}.tsv'}")


def main() -> None:
    default_root = Path(os.environ.get("SEQTASKS_DATA", Path.home() / ".cache" / "seqtasks"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_root / "shapes_captions")
    parser.add_argument("--train", type=int, default=24000, help="training images")
    parser.add_argument("--val", type=int, default=500, help="validation images (half with a held-out pair)")
    parser.add_argument("--test", type=int, default=1000, help="test images (half with a held-out pair)")
    parser.add_argument("--captions", type=int, default=2, help="captions per training image")
    parser.add_argument("--references", type=int, default=3, help="captions per val/test image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        per_image = args.captions if split == "train" else args.references
        write_split(args.out, split, getattr(args, split), per_image, args.seed)


if __name__ == "__main__":
    main()
