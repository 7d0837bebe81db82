"""torch wrappers around edge_app's label readers and synthetic scenes (the readers stay torch-free)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_app.frames.preprocess import Preprocessor
from edge_app.datasets import Dataset, load_image, load_mask
from edge_app.datasets.synthetic import CLASSES as SYN_CLASSES
from edge_app.datasets.synthetic import MASK_CLASSES as SYN_MASK_CLASSES
from edge_app.datasets.synthetic import make_sample

from . import augment
from .extras import require

torch = require("torch")


@dataclass(frozen=True)
class Source:
    """Where training samples come from: a listed Dataset, or seeded synthetic scenes."""

    dataset: Dataset | None = None
    synthetic_count: int = 0
    synthetic_seed: int = 0
    synthetic_size: tuple[int, int] = (320, 320)  # (width, height)

    def __len__(self) -> int:
        return len(self.dataset) if self.dataset is not None else self.synthetic_count

    @property
    def classes(self) -> tuple[str, ...]:
        if self.dataset is not None:
            return self.dataset.classes
        return SYN_CLASSES

    @property
    def mask_classes(self) -> tuple[str, ...]:
        return self.dataset.classes if self.dataset is not None else SYN_MASK_CLASSES

    @property
    def ignore_index(self) -> int | None:
        return self.dataset.ignore_index if self.dataset is not None else None

    def item(self, i: int, with_mask: bool = False, variant: int = 0) -> augment.Item:
        """Sample i; for synthetic data ``variant`` (the epoch, in training) draws a fresh scene, so
        training never sees the same synthetic image twice."""
        if self.dataset is None:
            w, h = self.synthetic_size
            key = [self.synthetic_seed, i] if variant == 0 else [self.synthetic_seed, i, variant]
            s = make_sample(np.random.default_rng(key), w, h)
            return augment.Item(s.image, s.truth.boxes.copy(), s.truth.classes.copy(), s.mask)
        sample = self.dataset.samples[i]
        image = load_image(sample.image_path)
        if with_mask:
            assert sample.mask_path is not None, f"{sample.image_path}: no mask"
            mask = load_mask(sample.mask_path, sample.image_path, image.shape)
            return augment.Item(image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), mask)
        truth = sample.truth
        assert truth is not None, f"{sample.image_path}: no boxes"
        keep = ~truth.ignore  # VOC "difficult" objects are not trained on
        return augment.Item(image, truth.boxes[keep].copy(), truth.classes[keep].copy(), None)


class DetectionTorchSet(torch.utils.data.Dataset):  # type: ignore[name-defined]  # torch is an optional extra, typed Any
    """(3, h, w) float RGB in [0, 1] stretched to the SSD input, target {boxes (N,4), labels (N,) 1-based}."""

    def __init__(self, source: Source, input_size: tuple[int, int], train: bool, seed: int = 0) -> None:
        self.source, self.input_size, self.train, self.seed = source, input_size, train, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[Any, dict[str, Any]]:
        item = self.source.item(i, variant=self.epoch if self.train else 0)
        if self.train:
            item = augment.detection_train(item, np.random.default_rng([self.seed, self.epoch, i]))
        h, w = item.image.shape[:2]
        pre = Preprocessor(self.input_size, color="RGB", resize="stretch")
        image, geo = pre.resized(item.image)
        boxes = item.boxes.astype(np.float32).reshape(-1, 4) * np.array(
            [geo.scale_x, geo.scale_y, geo.scale_x, geo.scale_y], np.float32)
        keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255)
        return tensor, {"boxes": torch.from_numpy(boxes[keep]),
                        "labels": torch.from_numpy(item.classes[keep].astype(np.int64) + 1)}


class SegmentationTorchSet(torch.utils.data.Dataset):  # type: ignore[name-defined]  # torch is an optional extra, typed Any
    """(3, h, w) normalised as the artifact will be, and (h, w) int64 class targets.

    Training: random scale + crop to the input size, flip, photometric; evaluation: the whole image
    resized to the input size (the runtime's preprocessing); the mask follows with nearest neighbour.
    """

    def __init__(self, source: Source, pre: Preprocessor, train: bool, seed: int = 0) -> None:
        self.source, self.pre, self.train, self.seed = source, pre, train, seed
        self.epoch = 0
        self.fill = 0 if source.ignore_index is None else source.ignore_index

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        item = self.source.item(i, with_mask=True, variant=self.epoch if self.train else 0)
        assert item.mask is not None
        size = (self.pre.height, self.pre.width)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            h, w = item.image.shape[:2]
            # bring the image near the input size first, then jitter scale around it
            base = max(size[0] / h, size[1] / w)
            item = augment.Item(*_resize_pair(item.image, item.mask, base))
            item = augment.scale_crop(item, rng, size, (0.75, 1.5))
            item = _pad_to(item, size, self.fill)
            item = augment.hflip(augment.photometric(item, rng), rng)
            image, mask = item.image, item.mask
            assert mask is not None
            image = self.pre.normalize(self.pre.resized(image)[0])
        else:
            resized, geo = self.pre.resized(item.image)
            image = self.pre.normalize(resized)
            assert item.mask is not None
            mask = _resize_mask(item.mask, size)
        return torch.from_numpy(image), torch.from_numpy(mask.astype(np.int64))


def _resize_pair(image: np.ndarray, mask: np.ndarray, s: float) -> tuple[Any, ...]:
    import cv2

    h, w = image.shape[:2]
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    return (cv2.resize(image, (nw, nh)), np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
            cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST))


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def _pad_to(item: augment.Item, size: tuple[int, int], fill: int) -> augment.Item:
    h, w = item.image.shape[:2]
    if h >= size[0] and w >= size[1]:
        return item
    assert item.mask is not None
    image = np.zeros((max(h, size[0]), max(w, size[1]), 3), np.uint8)
    image[:h, :w] = item.image
    mask = np.full(image.shape[:2], fill, item.mask.dtype)
    mask[:h, :w] = item.mask
    return augment.Item(image, item.boxes, item.classes, mask)


def detection_collate(batch: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    return torch.stack([b[0] for b in batch]), [b[1] for b in batch]
