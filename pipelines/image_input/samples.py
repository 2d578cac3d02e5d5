"""The bundled sample set: tiny, deterministic, learnable images of coloured shapes.

Four classes (circle, square, triangle, cross) of 32x32 images in train/val/test folders:
shapes of random colour, size and position on a noisy background; PNG and JPEG mixed, and
every fifth image grey, so every run on the samples exercises format and channel handling.
`python -m pipelines.image_input.samples [DIR]` rewrites them (default: data/images).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "cross", "square", "triangle")
BUNDLED = Path(__file__).resolve().parents[2] / "data" / "images"


def is_bundled(path: Path) -> bool:
    return Path(path).resolve() == BUNDLED.resolve()


def draw_shape(kind: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """One image of `kind`, colour, size and position drawn from `rng`."""
    background = rng.integers(0, 90, size=3)
    noise = rng.integers(-20, 21, size=(size, size, 3))
    pixels = np.clip(background + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(120, 256, size=3))
    radius = int(rng.integers(size // 5, size // 3 + 1))
    cx, cy = (int(v) for v in rng.integers(radius + 1, size - radius - 1, size=2))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    elif kind == "triangle":
        draw.polygon(
            [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour
        )
    elif kind == "cross":
        bar = max(2, radius // 2)
        draw.rectangle((cx - radius, cy - bar, cx + radius, cy + bar), fill=colour)
        draw.rectangle((cx - bar, cy - radius, cx + bar, cy + radius), fill=colour)
    else:
        raise ValueError(f"unknown shape {kind}")
    return image


def write_samples(
    root: Path,
    train_per_class: int = 24,
    val_per_class: int = 6,
    test_per_class: int = 8,
    size: int = 32,
    seed: int = 0,
) -> list[Path]:
    """Write `root/{train,val,test}/{class}/NNN.{png,jpg}`; the same bytes every time."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    written = []
    for split, count in (
        ("train", train_per_class),
        ("val", val_per_class),
        ("test", test_per_class),
    ):
        for kind in CLASSES:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                image = draw_shape(kind, rng, size)
                if index % 5 == 4:
                    image = image.convert("L")
                if index % 2:
                    path = folder / f"{index:03d}.jpg"
                    image.save(path, format="JPEG", quality=90)
                else:
                    path = folder / f"{index:03d}.png"
                    image.save(path, format="PNG", optimize=True)
                written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else BUNDLED
    files = write_samples(target)
    print(
        f"wrote {len(files)} images ({sum(f.stat().st_size for f in files) // 1024} KB) "
        f"under {target}"
    )
