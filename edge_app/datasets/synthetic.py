"""Synthetic scenes with exact labels: shapes over textured backgrounds (numpy + OpenCV, seeded).

Used by the demo source (an animated scene), by tests, and by conversion for training data. Labels are
exact: boxes are the tight bounds of each shape's visible pixels, and the class mask is drawn with the
same geometry (0 = background, k + 1 = class k).
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..core.types import GroundTruth
from .voc import voc_xml

CLASSES: tuple[str, ...] = ("circle", "square", "triangle")
MASK_CLASSES: tuple[str, ...] = ("background",) + CLASSES


@dataclass(frozen=True)
class SyntheticSample:
    """image: (H, W, 3) uint8 BGR; truth: boxes/classes (class k = CLASSES[k]);
    mask: (H, W) uint8, 0 = background, k + 1 = CLASSES[k]; ids: (G,) int64 identity of each truth box
    (an animated scene's objects keep theirs from frame to frame; stills number them 1..G)."""

    image: np.ndarray
    truth: GroundTruth
    mask: np.ndarray
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class _Shape:
    kind: int          # index into CLASSES
    cx: float
    cy: float
    size: float        # radius-like half extent (pixels)
    angle: float       # radians
    color: tuple[int, int, int]
    vx: float = 0.0
    vy: float = 0.0
    spin: float = 0.0
    ident: int = 0     # identity in an animated scene
    leaving: bool = False


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Low-frequency noise + a gradient + faint stripes: texture that a detector must learn to ignore."""
    small = rng.uniform(40, 200, (max(2, height // 48), max(2, width // 48), 3)).astype(np.float32)
    small = 0.35 * small + 0.65 * small.mean(axis=2, keepdims=True)  # muted colours: shapes stand out
    base = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(8, 40)
    stripes = 12 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / period * 2 * np.pi)
    grad = (xx / width * rng.uniform(-40, 40) + yy / height * rng.uniform(-40, 40))
    img = base + (stripes + grad)[..., None] + rng.normal(0, 4, (height, width, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _polygon(shape: _Shape) -> np.ndarray | None:
    if shape.kind == 0:
        return None
    n = 4 if shape.kind == 1 else 3
    t = shape.angle + np.arange(n) * 2 * np.pi / n + (np.pi / 4 if n == 4 else -np.pi / 2)
    r = shape.size * (np.sqrt(2) if n == 4 else 1.15)
    pts = np.stack([shape.cx + r * np.cos(t), shape.cy + r * np.sin(t)], axis=1)
    return np.round(pts * 16).astype(np.int32)  # 4 fractional bits: smooth motion


def _draw(img: np.ndarray | None, mask: np.ndarray, shape: _Shape, label: int) -> None:
    """Draw the shape antialiased into img (if given) and hard-edged with ``label`` into mask."""
    poly = _polygon(shape)
    if poly is None:
        centre = (int(round(shape.cx * 16)), int(round(shape.cy * 16)))
        radius = int(round(shape.size * 16))
        if img is not None:
            cv2.circle(img, centre, radius, shape.color, -1, cv2.LINE_AA, shift=4)
        cv2.circle(mask, centre, radius, label, -1, cv2.LINE_8, shift=4)
    else:
        if img is not None:
            cv2.fillPoly(img, [poly], shape.color, cv2.LINE_AA, shift=4)
        cv2.fillPoly(mask, [poly], label, cv2.LINE_8, shift=4)


def _render(background: np.ndarray, shapes: list[_Shape], min_visible: float = 0.35) -> SyntheticSample:
    img = background.copy()
    h, w = img.shape[:2]
    ids = np.zeros((h, w), np.uint16)  # instance id + 1 per pixel, later shapes occlude earlier ones
    full_area = []
    for i, s in enumerate(shapes):
        _draw(img, ids, s, i + 1)
        alone = np.zeros((h, w), np.uint8)
        _draw(None, alone, s, 1)
        full_area.append(int(np.count_nonzero(alone)))
    boxes, classes, idents = [], [], []
    mask = np.zeros((h, w), np.uint8)
    for i, s in enumerate(shapes):
        ys, xs = np.nonzero(ids == i + 1)
        if xs.size == 0 or xs.size < min_visible * max(full_area[i], 1):
            continue  # mostly hidden or outside: not a labelled object (and not in the mask either)
        mask[ys, xs] = s.kind + 1
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        classes.append(s.kind)
        idents.append(s.ident or i + 1)
    truth = GroundTruth(np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64))
    return SyntheticSample(img, truth, mask, np.array(idents, np.int64))


def _random_shape(rng: np.random.Generator, width: int, height: int, speed: float = 0.0) -> _Shape:
    size = rng.uniform(0.07, 0.2) * min(width, height) + 6  # half extent: 60..150 px objects at 320
    hue = int(rng.integers(0, 180))
    hsv = np.array([[[hue, int(rng.integers(150, 256)), int(rng.integers(150, 256))]]], np.uint8)
    b, g, r = (int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
    color = (b, g, r)
    heading = rng.uniform(0, 2 * np.pi)
    return _Shape(int(rng.integers(0, len(CLASSES))), rng.uniform(size, width - size),
                  rng.uniform(size, height - size), size, rng.uniform(0, 2 * np.pi), color,
                  speed * np.cos(heading), speed * np.sin(heading), rng.uniform(-0.05, 0.05) * (speed > 0))


def make_sample(rng: np.random.Generator, width: int = 320, height: int = 320,
                max_objects: int = 5) -> SyntheticSample:
    """One random still scene with 0..max_objects shapes (few overlaps)."""
    shapes: list[_Shape] = []
    for _ in range(int(rng.integers(0, max_objects + 1))):
        for _attempt in range(20):
            s = _random_shape(rng, width, height)
            if all(np.hypot(s.cx - o.cx, s.cy - o.cy) > 0.8 * (s.size + o.size) for o in shapes):
                shapes.append(s)
                break
    return _render(_background(rng, width, height), shapes)


class SyntheticVideo:
    """An animated scene over a fixed background; ``next()`` gives a frame. Objects keep their identity
    (``SyntheticSample.ids``): they drift and bounce off the edges, cross and hide each other, and now and
    then one leaves through an edge (``turnover`` per object and frame) and a new one walks in from an
    edge, so a tracker meets births, deaths, crossings and occlusions, each with its true identity."""

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0, num_objects: int = 4,
                 speed: float = 3.0, turnover: float = 1 / 200) -> None:
        self._rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        self.speed, self.turnover, self.num_objects = speed, turnover, num_objects
        self._background = _background(self._rng, width, height)
        self._shapes: list[_Shape] = []
        self._next_id = 1
        for _ in range(num_objects):  # start apart; they may cross later, as objects in a video do
            for _attempt in range(50):
                s = _random_shape(self._rng, width, height, speed)
                if all(np.hypot(s.cx - o.cx, s.cy - o.cy) > s.size + o.size for o in self._shapes):
                    break
            self._add(s)

    def _add(self, s: _Shape) -> None:
        s.ident = self._next_id
        self._next_id += 1
        self._shapes.append(s)

    def _enter(self) -> None:
        """A new object just outside a random edge, heading into the frame."""
        s = _random_shape(self._rng, self.width, self.height, self.speed)
        edge = int(self._rng.integers(0, 4))
        speed = self.speed * self._rng.uniform(0.7, 1.3)
        across = self._rng.uniform(-0.6, 0.6)
        if edge in (0, 1):  # left, right
            s.cx = -s.size if edge == 0 else self.width + s.size
            s.cy = self._rng.uniform(s.size, self.height - s.size)
            s.vx, s.vy = (speed if edge == 0 else -speed), speed * across
        else:               # top, bottom
            s.cy = -s.size if edge == 2 else self.height + s.size
            s.cx = self._rng.uniform(s.size, self.width - s.size)
            s.vx, s.vy = speed * across, (speed if edge == 2 else -speed)
        self._add(s)

    def next(self) -> SyntheticSample:
        sample = _render(self._background, self._shapes)
        for s in self._shapes:
            s.cx += s.vx
            s.cy += s.vy
            s.angle += s.spin
            inside_x = s.size <= s.cx <= self.width - s.size
            inside_y = s.size <= s.cy <= self.height - s.size
            if not s.leaving and self.turnover and self._rng.random() < self.turnover:
                s.leaving = True
            if s.leaving:
                continue  # it goes on through the edge
            entering_x = (s.cx < s.size and s.vx > 0) or (s.cx > self.width - s.size and s.vx < 0)
            entering_y = (s.cy < s.size and s.vy > 0) or (s.cy > self.height - s.size and s.vy < 0)
            if not inside_x and not entering_x:
                s.vx = -s.vx
            if not inside_y and not entering_y:
                s.vy = -s.vy
        gone = [s for s in self._shapes if s.leaving and (s.cx < -s.size or s.cx > self.width + s.size
                                                          or s.cy < -s.size or s.cy > self.height + s.size)]
        for s in gone:
            self._shapes.remove(s)
        while len(self._shapes) < self.num_objects:
            self._enter()
        return sample


def write_dataset(root: Path, count: int, seed: int = 0, width: int = 320, height: int = 240) -> Path:
    """Write seeded synthetic scenes as a labelled dataset on disk: ``images/`` (PNG), ``annotations/``
    (VOC XML) and ``masks/`` (class-index PNG), so every reader, the replay source and calibration can
    use them like real data. Returns ``root``."""
    root = Path(root)
    for sub in ("images", "annotations", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(MASK_CLASSES) + "\n")
    rng = np.random.default_rng(seed)
    for i in range(count):
        s = make_sample(rng, width, height)
        cv2.imwrite(str(root / "images" / f"{i:05d}.png"), s.image)
        cv2.imwrite(str(root / "masks" / f"{i:05d}.png"), s.mask)
        objects = [(CLASSES[c], [round(float(v)) for v in b]) for b, c in zip(s.truth.boxes, s.truth.classes)]
        (root / "annotations" / f"{i:05d}.xml").write_text(voc_xml(f"{i:05d}.png", width, height, objects))
    return root


def cache_root() -> Path:
    """Where derived data is cached: $EDGE_VISION_CACHE, systemd's $CACHE_DIRECTORY, $XDG_CACHE_HOME/
    edge-vision, else ~/.cache/edge-vision (never the package folder, which may be read-only)."""
    for var in ("EDGE_VISION_CACHE", "CACHE_DIRECTORY"):
        if os.environ.get(var):
            return Path(os.environ[var].split(":")[0])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-vision"


def validation_dir(training: dict, width: int, height: int, cache: Path | None = None) -> Path:
    """The held-out synthetic set of a model trained on synthetic scenes: the training's own validation
    size and seed offset, so build and calibrate measure the same images. Written once into the cache
    (a folder per count, seed, size and version of this generator), atomically: a half-written set is
    never reused."""
    count = int(training.get("synthetic_val", 100))
    seed = int(training.get("seed", 0)) + 10_000
    if training.get("synthetic_size"):  # scenes were drawn at a camera-like size, then resized by the model
        width, height = (int(v) for v in training["synthetic_size"])
    version = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]
    root = (cache or cache_root()) / "synthetic-val" / f"n{count}-seed{seed}-{width}x{height}-{version}"
    if not (root / "images").is_dir():
        tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        write_dataset(tmp, count, seed=seed, width=width, height=height)
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    return root
