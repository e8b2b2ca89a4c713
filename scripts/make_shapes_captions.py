"""Write the synthetic shapes captioning dataset (seqtasks/data/shapes.py draws and describes the scenes):

    python scripts/make_shapes_captions.py                    # -> $SEQTASKS_DATA/shapes_captions/
    python scripts/make_shapes_captions.py --out /tmp/shapes --train 500 --val 50 --test 100

<out>/images/<split>_<n>.png (64x64 RGB) and <out>/{train,val,test}.tsv of `image<TAB>caption`
lines, image paths relative to the TSV: `--captions` different paraphrases per training image,
`--references` per val/test image (the references BLEU scores against). Deterministic: the same
arguments write the same bytes.

Generalisation, not memorisation: the colour-shape pairs in HELD_OUT never occur in training
images; half the validation and half the test images hold at least one of them (the task reports
attribute accuracy on those apart: `val/attr_acc_heldout`, `test/attr_acc_heldout`). Validation
holds them so that checkpoints and decoding settings are chosen for generalisation, on images the
test never sees.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from seqtasks.data.shapes import Scene, captions, random_scene, render

HELD_OUT = {("green", "triangle"), ("blue", "circle"), ("yellow", "square")}
SPLITS = ("train", "val", "test")


def holds_held_out(scene: Scene) -> bool:
    return any((s.colour, s.shape) in HELD_OUT for s in scene)


def split_scenes(split: str, count: int, rng: np.random.Generator) -> list[Scene]:
    """Scenes without a held-out pair; in val and test, every other one with at least one."""
    scenes = []
    while len(scenes) < count:
        scene = random_scene(rng)
        wanted = split != "train" and len(scenes) % 2 == 1
        if holds_held_out(scene) == wanted:
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
