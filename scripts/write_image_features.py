"""Write feature arrays of a captions dataset's images with a trained captioner's CNN, and TSVs that
name them, so that `image_encoder=precomputed` trains on them: the path a user with a real vision
model (a ResNet, a detector) takes, with the features coming from our own CNN instead.

    python scripts/write_image_features.py --ckpt <run>/checkpoints/best.ckpt \\
        --data $SEQTASKS_DATA/shapes_captions --out $SEQTASKS_DATA/shapes_features
    python -m seqtasks experiment=shapes_captioning image_encoder=precomputed \\
        data.train=shapes_features/train.tsv data.val=shapes_features/val.tsv data.test=shapes_features/test.tsv

For every <data>/<split>.tsv: <out>/features/<split>_<n>.npy, the CNN's grid of image n, float16
(regions, dim) (8x8 cells x 128 by default: half the disk of float32, and plenty of precision for
features), and <out>/<split>.tsv with the same captions next to those files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from seqtasks.configuration.plugins import load_plugins
from seqtasks.data.captions import read_captions
from seqtasks.data.images import stack_inputs
from seqtasks.runtime.build import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="a captioning checkpoint with image_encoder=cnn")
    parser.add_argument("--data", type=Path, required=True, help="the directory of the captions TSVs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    load_plugins()
    task = load_task(args.ckpt)
    (args.out / "features").mkdir(parents=True, exist_ok=True)
    for split in args.splits:
        images = read_captions(args.data / f"{split}.tsv", task.inputs["image_size"])
        rows = []
        with task.inference():
            for start in range(0, len(images), args.batch_size):
                inputs, _ = stack_inputs(images.inputs[start : start + args.batch_size])
                grids = task.image_encoder(inputs).numpy().astype(np.float16)  # (B, R, D)
                for n, grid in enumerate(grids, start=start):
                    name = f"features/{split}_{n:05d}.npy"
                    np.save(args.out / name, grid)
                    rows += [f"{name}\t{caption}\n" for caption in images.captions[n]]
        (args.out / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
        print(f"{split}: {len(images)} feature arrays {grids.shape[1:]} -> {args.out / f'{split}.tsv'}")


if __name__ == "__main__":
    main()
