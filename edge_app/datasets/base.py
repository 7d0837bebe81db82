"""What every label reader returns, and how bad labels are counted rather than crashing or passing.

Readers are torch-free: the runtime's replay source and label inbox, calibration and conversion all use
them. Images and masks are read lazily (``load_image``/``load_mask``) so listing a dataset is cheap.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..core.boxes import box_area
from ..core.classes import remap_truth
from ..core.types import GroundTruth


class DatasetError(Exception):
    """A dataset that cannot be used as asked (missing folder, mask/image size mismatch...)."""


@dataclass
class LabelIssues:
    """Counts and examples of label problems met while reading; ``summary()`` is printed before use."""

    counts: collections.Counter = field(default_factory=collections.Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, where: str) -> None:
        self.counts[kind] += 1
        self.examples.setdefault(kind, [])
        if len(self.examples[kind]) < 5:
            self.examples[kind].append(where)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def summary(self) -> str:
        if not self.counts:
            return "labels: no problems found"
        lines = ["labels: problems found (fixed or skipped, never silently):"]
        for kind, n in sorted(self.counts.items()):
            lines.append(f"  {kind}: {n} (e.g. {', '.join(self.examples[kind])})")
        return "\n".join(lines)


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``truth`` for detection sets, ``mask_path`` for segmentation sets.

    image_id: stable integer id (COCO's id, or the position in a sorted listing); size: (width, height)
    as the label file states it (None when it does not); ids: (G,) identities of the truth boxes where
    the labels carry them (MOTChallenge sequences).
    """

    image_id: int
    image_path: Path
    truth: GroundTruth | None = None
    mask_path: Path | None = None
    size: tuple[int, int] | None = None
    ids: np.ndarray | None = None


@dataclass
class Dataset:
    """A listed dataset: samples plus the class names its labels use and what was wrong with them."""

    samples: list[Sample]
    classes: tuple[str, ...]
    task: str  # "detection" | "segmentation"
    issues: LabelIssues = field(default_factory=LabelIssues)
    ignore_index: int | None = None
    root: Path | None = None
    category_ids: tuple[int, ...] | None = None  # COCO: the category id of each class index

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, indices: list[int] | np.ndarray) -> "Dataset":
        return Dataset([self.samples[i] for i in indices], self.classes, self.task, self.issues,
                       self.ignore_index, self.root, self.category_ids)

    def with_classes(self, names: tuple[str, ...] | list[str]) -> "Dataset":
        """This dataset in another class list, matched by name (``core.classes``), never by position.

        Detection: every box is re-indexed to ``names``; boxes of classes ``names`` lacks are dropped and
        counted in ``issues``. Segmentation: a mask's values are positions, so ``names`` renames them
        (it must have one name per class); a different count is a DatasetError.
        """
        names = tuple(names)
        if names == self.classes:
            return self
        if self.task == "segmentation":
            if len(names) != len(self.classes):
                raise DatasetError(f"{self.root}: masks have {len(self.classes)} classes {list(self.classes)}, "
                                   f"cannot name them {list(names)}")
            return Dataset(self.samples, names, self.task, self.issues, self.ignore_index, self.root, self.category_ids)
        samples = []
        for s in self.samples:
            truth = s.truth
            if truth is not None:
                truth, dropped = remap_truth(truth, self.classes, names)
                for _ in range(dropped):
                    self.issues.add(f"class not in {list(names)} (object dropped)", str(s.image_path))
            samples.append(replace(s, truth=truth))
        ids = None
        if self.category_ids is not None:  # COCO ids follow their names; new names get none
            by_name = dict(zip(self.classes, self.category_ids))
            ids = tuple(by_name.get(n, -1) for n in names)
        return Dataset(samples, names, self.task, self.issues, self.ignore_index, self.root, ids)


def load_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR; greyscale files are expanded to three channels."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{path}: cannot read image (missing, truncated or not an image)")
    return img


def load_mask(path: Path, image_path: Path | None = None, image_shape: tuple[int, ...] | None = None,
              binary_255: bool = True) -> np.ndarray:
    """(H, W) class-index mask. A 0/255 binary mask becomes 0/1 (so 255 is never read as 'ignore').

    image_shape: when given, a mask of another size is an error naming both files.
    """
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DatasetError(f"{path}: cannot read mask")
    if mask.ndim == 3:
        if not (np.array_equal(mask[..., 0], mask[..., 1]) and np.array_equal(mask[..., 0], mask[..., 2])):
            raise DatasetError(f"{path}: expected a single-channel class-index mask, got colour")
        mask = mask[..., 0]
    if image_shape is not None and mask.shape[:2] != tuple(image_shape[:2]):
        raise DatasetError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path} is "
                           f"{image_shape[1]}x{image_shape[0]}: sizes must match")
    if binary_255 and mask.dtype == np.uint8:
        values = np.unique(mask)
        if values.size <= 2 and set(values.tolist()) <= {0, 255} and 255 in values:
            mask = (mask == 255).astype(np.uint8)
    return mask


def sanitize_boxes(boxes: np.ndarray, size: tuple[int, int] | None, where: str,
                   issues: LabelIssues) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the image and drop empty ones, counting both. Returns (boxes, keep mask)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    if size is not None and len(b):
        w, h = size
        outside = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > w) | (b[:, 3] > h)
        for _ in range(int(outside.sum())):
            issues.add("box outside the image (clipped)", where)
        np.clip(b[:, 0::2], 0, w, out=b[:, 0::2])
        np.clip(b[:, 1::2], 0, h, out=b[:, 1::2])
    keep = box_area(b) > 0
    for _ in range(int((~keep).sum())):
        issues.add("zero-area box (dropped)", where)
    return b, keep


def read_class_names(path: Path) -> tuple[tuple[str, ...], int | None]:
    """A class names file: one name per line, optionally 'index name'. A name containing 'ignore' marks
    the ignore index (CamVid's 'Unlabelled (ignore_label ...)'). Returns (names, ignore_index)."""
    names: list[str] = []
    ignore = None
    for i, line in enumerate(path.read_text().splitlines()):
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        name = rest.strip() if head.isdigit() and rest else line
        if head.isdigit() and int(head) != len(names):
            raise DatasetError(f"{path}:{i + 1}: expected index {len(names)}, got {head}")
        if "ignore" in name.lower():
            ignore = len(names)
        names.append(name.split(" (")[0])
    if not names:
        raise DatasetError(f"{path}: no class names")
    return tuple(names), ignore


def holdout(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(train, validation): a seeded random ``fraction`` held out. Training, build and calibration call
    this with the seed and fraction recorded in the artifact, so they all mean the same images."""
    order = np.random.default_rng(seed).permutation(len(ds))
    k = max(1, int(round(len(ds) * fraction)))
    return ds.subset(sorted(order[k:].tolist())), ds.subset(sorted(order[:k].tolist()))
