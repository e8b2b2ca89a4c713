"""Synthetic scenes of shapes, their captions and the grammar that reads captions back.

A scene holds 1 to 3 shapes (circle, square, triangle), each with one of 6 colours and 2 sizes, at
one of 4 places (left, right, top, bottom: at most one shape per place), drawn on a noisy 64x64
background. Captions come from a small grammar with paraphrases:

    a small red circle left of a blue square
    there is a big blue square and a small red circle
    a little red circle , a large green square and a yellow triangle

The size word of a large shape may be left out ("a blue square" is large). `parse` reads the
objects a caption names, (size, colour, shape) per object, so captioning can be scored on what
it says (attribute accuracy), whatever paraphrase it chose. `scripts/make_shapes_captions.py`
writes a dataset of such scenes; the tests check that `parse` reads back every caption that
`captions` can write.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (50, 100, 240),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
    "white": (245, 245, 245),
}
SIZES = ("small", "large")
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big", "")}  # "": a large shape unqualified
SIZE_OF_WORD = {word: size for size, words in SIZE_WORDS.items() for word in words if word}
PLACES = ("left", "right", "top", "bottom")
# Relation of a shape to another, by its own place ("a red circle left of a blue square").
RELATION = {"left": "left of", "right": "right of", "top": "above", "bottom": "below"}
ON_PLACE = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}

IMAGE_SIZE = 64
CENTRES = {"left": (14, 32), "right": (50, 32), "top": (32, 14), "bottom": (32, 50)}
HALF_SIZE = {"small": 5, "large": 9}  # half the side (the radius) in pixels: shapes at two places never overlap

Objects = tuple[tuple[str, str, str], ...]  # sorted (size, colour, shape) triples


@dataclass(frozen=True)
class Shape:
    shape: str
    colour: str
    size: str
    place: str


Scene = tuple[Shape, ...]


def objects(scene: Scene) -> Objects:
    """What a caption of the scene must name: its (size, colour, shape) triples, sorted."""
    return tuple(sorted(((s.size, s.colour, s.shape) for s in scene), key=str))  # parse's order


def random_scene(rng: np.random.Generator) -> Scene:
    """1 to 3 shapes at distinct places; no two share colour and shape (a caption could not tell them apart)."""
    count = int(rng.integers(1, 4))
    places = rng.permutation(PLACES)[:count]
    kinds = rng.permutation([(c, s) for c in COLOURS for s in SHAPES])[:count]
    return tuple(
        Shape(shape=str(shape), colour=str(colour), size=str(rng.choice(SIZES)), place=str(place))
        for (colour, shape), place in zip(kinds, places, strict=True)
    )


# --- captions -----------------------------------------------------------------------------------------
def phrase(shape: Shape, rng: np.random.Generator) -> str:
    size = str(rng.choice(SIZE_WORDS[shape.size]))
    return " ".join(word for word in ("a", size, shape.colour, shape.shape) if word)


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """One caption of the scene, its paraphrase and the order of its shapes drawn from rng."""
    order = [scene[i] for i in rng.permutation(len(scene))]
    phrases = [phrase(s, rng) for s in order]
    template = int(rng.integers(3))
    if len(order) == 1:
        return [phrases[0], f"there is {phrases[0]}", f"{phrases[0]} {ON_PLACE[order[0].place]}"][template]
    listed = " , ".join(phrases[:-1]) + f" and {phrases[-1]}"
    if template == 0:
        return listed
    if template == 1:
        return f"there is {listed}"
    related = f"{phrases[0]} {RELATION[order[0].place]} {phrases[1]}"
    return related if len(order) == 2 else f"{related} and {phrases[2]}"


def captions(scene: Scene, count: int, rng: np.random.Generator) -> list[str]:
    """`count` different captions of the scene (fewer when the grammar has fewer for it)."""
    found: list[str] = []
    for _ in range(50 * count):
        text = caption(scene, rng)
        if text not in found:
            found.append(text)
        if len(found) == count:
            break
    return found


def parse(text: str) -> Objects:
    """The objects a caption names: for every shape word, the colour word before it (None
    without one) and the size word before that ("large" without one), sorted."""
    words = text.split()
    found = []
    for i, word in enumerate(words):
        if word not in SHAPES:
            continue
        j = i - 1
        colour = words[j] if j >= 0 and words[j] in COLOURS else None
        j -= colour is not None
        size = SIZE_OF_WORD.get(words[j], "large") if j >= 0 else "large"
        found.append((size, colour, word))
    return tuple(sorted(found, key=str))


# --- images ---------------------------------------------------------------------------------------------
def render(scene: Scene, rng: np.random.Generator) -> Image.Image:
    """The scene as a 64x64 RGB image: uniform noise around a dark grey, each shape at its place
    moved by up to a pixel, with noise on its colour too."""
    background = rng.normal(70, 25, (IMAGE_SIZE, IMAGE_SIZE, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    for shape in scene:
        x, y = (c + int(d) for c, d in zip(CENTRES[shape.place], rng.integers(-1, 2, 2), strict=True))
        r = HALF_SIZE[shape.size]
        fill = tuple(int(v) for v in np.clip(np.array(COLOURS[shape.colour]) + rng.integers(-20, 21, 3), 0, 255))
        if shape.shape == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif shape.shape == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    return image
