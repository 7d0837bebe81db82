"""A/B numbers of a current and a candidate model on the same labelled frames, and the decision.

Every labelled frame both models saw becomes one *pair*: per class, each model's TP, FP and the labels
(detectors: ``DetectionMetrics`` on that frame, i.e. ``core.matching``'s COCO rules at the rolling IoU, the
very matcher of the rolling window and of calibration), or each model's confusion matrix (segmenters).
Frames are the unit of resampling: the paired bootstrap draws frames with replacement and recomputes both
models' micro F1 (mIoU) on the same draw, so the interval of the difference keeps the pairing (the scene
that is hard for one is hard for the other) and is far narrower than two separate intervals.

The rule (``Rule``): once ``frames`` pairs are in, promote when the lower bound of the one-sided
``confidence`` interval of candidate - current is above ``-margin`` (the candidate is not worse by more than
the margin), else reject. One look at a fixed number of frames: looking again after every frame would make
the stated confidence false.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.classes import IGNORE, align, mask_lut
from ..core.detection_metrics import DetectionMetrics
from ..core.segmentation_metrics import confusion_matrix
from ..core.types import FrameLabels

_ALL = {"all": (0.0, 1e10)}


@dataclass(frozen=True)
class Rule:
    """The decision: after ``frames`` labelled pairs, promote when candidate - current > -``margin`` at
    one-sided ``confidence`` (paired bootstrap with ``resamples`` draws), else reject."""
    frames: int = 100
    margin: float = 0.02
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0


def wilson(k: float, n: float, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a proportion k/n (None when n = 0)."""
    if n <= 0:
        return None
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def frame_counts(det: Any, labels: FrameLabels, classes: tuple[str, ...], iou: float,
                 max_dets: int = 100) -> np.ndarray | None:
    """(C, 3) [tp, fp, labels] of one detector's detections on one frame (None: the labels judge none of
    its classes). Classes the labels do not judge count zero everywhere."""
    if labels.truth is None:
        return None
    d, truth, judged = align(det, labels.truth, labels.classes, classes, labels.exhaustive)
    if not judged.any():
        return None
    m = DetectionMetrics(len(classes), iou_thresholds=(iou,), area_ranges=_ALL, max_dets=(max_dets,))
    m.update(d, truth)
    r = m.compute()
    out = np.stack([r.tp, r.fp, r.num_gt], axis=1).astype(np.int64)
    out[~judged] = 0
    return out


def frame_confusion(mask: np.ndarray, labels: FrameLabels, classes: tuple[str, ...]) -> np.ndarray | None:
    """(C, C) confusion (rows truth) of one segmenter's (H, W) class map on one frame's mask label."""
    if labels.mask is None:
        return None
    lut = mask_lut(labels.mask_classes, classes, labels.ignore_index)
    truth = lut[np.clip(labels.mask, 0, 255).astype(np.uint8)]
    if truth.shape != mask.shape:
        return None
    return confusion_matrix(np.minimum(mask, len(classes) - 1), truth, len(classes), IGNORE)


def _f1(counts: np.ndarray) -> np.ndarray:
    """Micro F1 of (..., C, 3) counts summed over classes: (...)."""
    tp, fp, n = counts[..., 0].sum(-1), counts[..., 1].sum(-1), counts[..., 2].sum(-1)
    denom = 2 * tp + fp + (n - tp)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def _miou(conf: np.ndarray) -> np.ndarray:
    """Mean IoU over classes present, of (..., C, C) confusions: (...)."""
    tp = np.diagonal(conf, axis1=-2, axis2=-1).astype(np.float64)
    union = conf.sum(-1) + conf.sum(-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        return np.nanmean(np.where(np.isnan(iou).all(-1, keepdims=True), 0.0, iou), axis=-1)


class PairedScore:
    """Pairs of one model's current and candidate results on the same frames; thread-safe."""

    def __init__(self, task: str, classes: tuple[str, ...], iou: float = 0.5, rule: Rule = Rule()) -> None:
        self.task, self.classes, self.iou, self.rule = task, tuple(classes), iou, rule
        self.metric = "f1" if task == "detection" else "miou"
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self.times: list[float] = []  # when each pair was scored (monotonic): how dense the frames were
        self.latency_s: dict[str, list[float]] = {"current": [], "candidate": []}
        self.unpaired = 0
        self._lock = threading.Lock()
        self._numbers: tuple[int, dict[str, Any]] | None = None  # the last bootstrap and its frame count

    def __len__(self) -> int:
        return len(self._pairs)

    def add(self, current: Any, candidate: Any, labels: FrameLabels) -> bool:
        """One frame: ``current`` / ``candidate`` are ModelResults (detections or a mask) of that frame."""
        if self.task == "detection":
            if current.detections is None or candidate.detections is None:
                return False
            a = frame_counts(current.detections, labels, self.classes, self.iou)
            b = frame_counts(candidate.detections, labels, self.classes, self.iou)
        else:
            if current.mask is None or candidate.mask is None:
                return False
            a = frame_confusion(current.mask.labels, labels, self.classes)
            b = frame_confusion(candidate.mask.labels, labels, self.classes)
        if a is None or b is None:
            self.unpaired += 1
            return False
        with self._lock:
            self._pairs.append((a, b))
            self.times.append(time.monotonic())
        return True

    def gap_s(self) -> float:
        """The mean time between the frames scored: a watch after a promotion samples as densely (frames of
        one second of video are nearly one frame: taking all of them would judge on a few scenes)."""
        with self._lock:
            t = list(self.times)
        return (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else 0.0

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            pairs = list(self._pairs)
        if not pairs:
            shape = (0, len(self.classes), 3 if self.task == "detection" else len(self.classes))
            return np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _value(self, x: np.ndarray) -> np.ndarray:
        return _f1(x) if self.task == "detection" else _miou(x)

    def bootstrap(self) -> dict[str, Any]:
        """Point values and intervals: each model's metric, the difference (candidate - current). Computed
        once per frame count (a status read many times a second costs one bootstrap per new frame)."""
        a, b = self.arrays()
        n = len(a)
        if n == 0:
            return {"frames": 0}
        cached = self._numbers
        if cached is not None and cached[0] == n:
            return cached[1]
        rng = np.random.default_rng(self.rule.seed + n)
        # (R, n): how often each frame is drawn in each resample. Frame indices drawn uniformly and counted
        # with one bincount: the multinomial itself, ~8x faster than rng.multinomial (14 ms at n = 100).
        r = self.rule.resamples
        picks = rng.integers(0, n, size=(r, n)) + np.arange(r)[:, None] * n
        draws = np.bincount(picks.ravel(), minlength=r * n).reshape(r, n).astype(np.float64)
        # (R, C, k): the resampled sums, one float matrix product each (BLAS; int64 took numpy's slow path)
        sa = (draws @ a.reshape(n, -1).astype(np.float64)).reshape(r, *a.shape[1:])
        sb = (draws @ b.reshape(n, -1).astype(np.float64)).reshape(r, *b.shape[1:])
        va, vb = self._value(sa), self._value(sb)
        d = vb - va
        alpha = 1 - self.rule.confidence
        lo, hi = 100 * alpha, 100 * (1 - alpha)

        def q(x: np.ndarray) -> list[float] | None:
            x = x[~np.isnan(x)]
            return [round(float(np.percentile(x, lo)), 4), round(float(np.percentile(x, hi)), 4)] if x.size else None

        point_a, point_b = float(self._value(a.sum(0))), float(self._value(b.sum(0)))
        out = {"frames": n, "metric": self.metric, "current": _r(point_a), "candidate": _r(point_b),
               "delta": _r(point_b - point_a), "current_interval": q(va), "candidate_interval": q(vb),
               "delta_interval": q(d), "confidence": self.rule.confidence}
        self._numbers = (n, out)
        return out

    def per_class(self) -> dict[str, Any]:
        """Per class, per model: P, R, F1 with Wilson intervals of P and R (detectors), IoU (segmenters)."""
        a, b = self.arrays()
        out: dict[str, Any] = {}
        for i, name in enumerate(self.classes):
            row: dict[str, Any] = {}
            for side, x in (("current", a), ("candidate", b)):
                s = x.sum(0)
                if self.task == "detection":
                    tp, fp, n = (float(v) for v in s[i])
                    p = tp / (tp + fp) if tp + fp else None
                    r = tp / n if n else None
                    f1 = 2 * tp / (2 * tp + fp + n - tp) if (2 * tp + fp + n - tp) else None
                    row[side] = {"precision": _r(p), "recall": _r(r), "f1": _r(f1), "labels": int(n),
                                 "precision_interval": wilson(tp, tp + fp), "recall_interval": wilson(tp, n)}
                else:
                    inter = float(s[i, i])
                    union = float(s[i].sum() + s[:, i].sum() - s[i, i])
                    row[side] = {"iou": _r(inter / union) if union else None, "pixels": int(s[i].sum())}
            out[name] = row
        return out

    def record_latency(self, side: str, seconds: float) -> None:
        lat = self.latency_s[side]
        lat.append(seconds)
        if len(lat) > 1000:
            del lat[:500]

    def latency_ms(self) -> dict[str, float | None]:
        return {k: (round(float(np.median(v)) * 1000, 2) if v else None) for k, v in self.latency_s.items()}

    def decide(self) -> tuple[str | None, dict[str, Any]]:
        """("promote" | "reject", numbers) once the rule's frames are in; (None, {"frames"}) before (no
        bootstrap: the manager asks twice a second, and the numbers before the decision are the status')."""
        if len(self) < self.rule.frames:
            return None, {"frames": len(self)}
        numbers = self.bootstrap()
        interval = numbers.get("delta_interval")
        if interval is None:
            return "reject", {**numbers, "reason": "no frame could be scored for both models"}
        if interval[0] > -self.rule.margin:
            return "promote", {**numbers, "reason": f"{self.metric} difference {numbers['delta']:+.4f}, lower bound "
                                                   f"{interval[0]:+.4f} > -{self.rule.margin} at {self.rule.confidence}"}
        return "reject", {**numbers, "reason": f"{self.metric} difference {numbers['delta']:+.4f}, lower bound "
                                               f"{interval[0]:+.4f} <= -{self.rule.margin} at {self.rule.confidence}: "
                                               "may be worse by more than the margin"}


class Watch:
    """After a promotion: the promoted model's own metric on the next labelled frames, to compare with the
    interval the previous model had (a rollback when it falls below its lower bound)."""

    def __init__(self, task: str, classes: tuple[str, ...], iou: float, floor: float | None, frames: int,
                 gap_s: float = 0.0) -> None:
        """floor: the previous model's lower bound; frames: how many to judge on, at least ``gap_s`` apart
        (the density of the frames the decision was made on)."""
        self.task, self.classes, self.iou, self.floor, self.frames = task, tuple(classes), iou, floor, frames
        self.gap_s = gap_s
        self._rows: list[np.ndarray] = []
        self._last = -1e18

    def add(self, result: Any, labels: FrameLabels, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._last < self.gap_s or len(self._rows) >= self.frames:
            return
        self._last = now
        if self.task == "detection" and result.detections is not None:
            x = frame_counts(result.detections, labels, self.classes, self.iou)
        elif self.task != "detection" and result.mask is not None:
            x = frame_confusion(result.mask.labels, labels, self.classes)
        else:
            x = None
        if x is not None:
            self._rows.append(x)

    def value(self) -> float | None:
        if not self._rows:
            return None
        s = np.stack(self._rows).sum(0)
        v = _f1(s) if self.task == "detection" else _miou(s)
        return None if np.isnan(v) else round(float(v), 4)

    def verdict(self) -> str | None:
        """"below" once ``frames`` are in and the metric is under ``floor``; "kept" when it is not."""
        if len(self._rows) < self.frames:
            return None
        v = self.value()
        return "below" if self.floor is not None and v is not None and v < self.floor else "kept"

    def __len__(self) -> int:
        return len(self._rows)


def _r(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)
