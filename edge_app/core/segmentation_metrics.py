"""Segmentation metrics with reset/update/compute: confusion matrix, IoU, mIoU, Dice, pixel accuracy.

Rows of the confusion matrix are the true class, columns the predicted class. Pixels whose label is the
ignore index are left out. The same object serves a whole dataset and a rolling window of frames.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentationReport:
    """Per-class arrays have shape (C,); NaN where a class appears neither in truth nor prediction.

    confusion: (C, C) int64 pixel counts, rows = truth, columns = prediction.
    """

    confusion: np.ndarray
    iou: np.ndarray
    dice: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    pixel_accuracy: float

    @property
    def miou(self) -> float:
        """Mean IoU over classes present in truth or prediction."""
        ok = ~np.isnan(self.iou)
        return float(self.iou[ok].mean()) if ok.any() else float("nan")

    @property
    def mean_dice(self) -> float:
        ok = ~np.isnan(self.dice)
        return float(self.dice[ok].mean()) if ok.any() else float("nan")


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, num_classes: int,
                     ignore_index: int | None = None) -> np.ndarray:
    """(H, W) predicted classes, (H, W) true classes -> (C, C) int64 counts (rows truth).

    True labels outside 0..C-1 other than the ignore index, and predictions outside 0..C-1, are errors.
    """
    p = np.asarray(pred).reshape(-1)
    t = np.asarray(truth).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"prediction has {np.shape(pred)}, truth has {np.shape(truth)}: sizes differ")
    if ignore_index is not None:
        valid = t != ignore_index
        p, t = p[valid], t[valid]
    p = p.astype(np.int64, copy=False)
    t = t.astype(np.int64, copy=False)
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"truth has class {int(t.max() if t.max() >= num_classes else t.min())} "
                         f"outside 0..{num_classes - 1} (ignore index {ignore_index})")
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"prediction has class {int(p.max() if p.max() >= num_classes else p.min())} "
                         f"outside 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def report_from_confusion(conf: np.ndarray) -> SegmentationReport:
    """Metrics of a (C, C) confusion matrix (rows truth)."""
    conf = np.asarray(conf, np.int64)
    tp = np.diag(conf).astype(np.float64)
    truth = conf.sum(axis=1).astype(np.float64)
    predicted = conf.sum(axis=0).astype(np.float64)
    union = truth + predicted - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        dice = np.where(truth + predicted > 0, 2 * tp / (truth + predicted), np.nan)
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(truth > 0, tp / truth, np.nan)
    total = conf.sum()
    acc = float(tp.sum() / total) if total else float("nan")
    return SegmentationReport(conf, iou, dice, precision, recall, acc)


class SegmentationMetrics:
    """Accumulates confusion matrices of frames.

    window: keep only the last ``window`` frames (None = all); ``prune(before)`` drops by timestamp.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None,
                 window: int | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.window = window
        self._frames: collections.deque[tuple[float, np.ndarray]] = collections.deque()
        self._sum = np.zeros((num_classes, num_classes), np.int64)
        self._count = 0  # frames added without a window (which keeps no history)

    def reset(self) -> None:
        self._frames.clear()
        self._sum[:] = 0
        self._count = 0

    def __len__(self) -> int:
        return len(self._frames) if self.window is not None else self._count

    def update(self, pred: np.ndarray, truth: np.ndarray, timestamp: float = 0.0) -> None:
        """Add one frame: (H, W) predicted class map and (H, W) true class map."""
        conf = confusion_matrix(pred, truth, self.num_classes, self.ignore_index)
        self._sum += conf
        if self.window is None:
            # A whole-dataset accumulator needs no per-frame history.
            self._count += 1
            return
        self._frames.append((float(timestamp), conf))
        while len(self._frames) > self.window:
            self._sum -= self._frames.popleft()[1]

    def prune(self, before: float) -> None:
        """Drop frames older than ``before`` (only for windowed metrics, which keep history)."""
        while self._frames and self._frames[0][0] < before:
            self._sum -= self._frames.popleft()[1]

    def compute(self) -> SegmentationReport:
        return report_from_confusion(self._sum.copy())
