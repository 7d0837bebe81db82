"""A small-object detection set: mosaics of synthetic scenes, so every object is a few percent of the image.

Each image is a ``grid`` x ``grid`` mosaic of seeded synthetic scenes (edge_app.datasets.synthetic, up to
``per_tile`` shapes each) drawn at ``tile`` px; with grid 4 and tile 160 the image is 640x640 and the
shapes' scale sqrt(w h) is 0.06..0.15 of it (measured: median 0.09): 18..47 px once stretched to a 320x320 input, below
SSDLite's first default box (scale 0.2 = 64 px) and around one cell of its stride-16 map. Written as a
VOC folder (``images/``, ``annotations/``) that every reader takes.

``python -m conversion.small_objects OUT --count 200 --seed 0``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from edge_app.core.artifact import write_atomic
from edge_app.datasets.voc import voc_xml
from edge_app.datasets.synthetic import CLASSES, make_sample


def mosaic(rng: np.random.Generator, grid: int, tile: int, per_tile: int) -> tuple[np.ndarray, list]:
    """(image (grid*tile, grid*tile, 3) BGR, [(class name, [x0, y0, x1, y1] px)])."""
    size = grid * tile
    image = np.zeros((size, size, 3), np.uint8)
    objects = []
    for r in range(grid):
        for c in range(grid):
            s = make_sample(rng, tile, tile, max_objects=per_tile)
            image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = s.image
            for b, k in zip(s.truth.boxes, s.truth.classes):
                objects.append((CLASSES[int(k)], [round(float(b[0]) + c * tile), round(float(b[1]) + r * tile),
                                                  round(float(b[2]) + c * tile), round(float(b[3]) + r * tile)]))
    return image, objects


def write_mosaics(root: Path, count: int, seed: int = 0, grid: int = 4, tile: int = 160, per_tile: int = 2) -> Path:
    """``count`` mosaics as a VOC folder under ``root``; returns ``root``."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    size = grid * tile
    for i in range(count):
        image, objects = mosaic(rng, grid, tile, per_tile)
        ok, png = cv2.imencode(".png", image)
        assert ok
        write_atomic(root / "images" / f"{i:05d}.png", png.tobytes())
        write_atomic(root / "annotations" / f"{i:05d}.xml", voc_xml(f"{i:05d}.png", size, size, objects))
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conversion.small_objects", description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", type=int, default=4)
    p.add_argument("--tile", type=int, default=160)
    p.add_argument("--per-tile", type=int, default=2)
    a = p.parse_args(argv)
    write_mosaics(Path(a.out), a.count, a.seed, a.grid, a.tile, a.per_tile)
    print(f"{a.count} mosaics in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
