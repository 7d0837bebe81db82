"""Rolling precision/recall of each model against sampled labels, with the core's matcher.

Windows: the last K labelled frames and the last T seconds. Detection: P, R, F1 per class and overall at
one IoU. Segmentation: per-class pixel precision, recall and IoU. Label class names are matched to the
model's by name (a binary model against multi-class masks scores foreground = any labelled object).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import numpy as np

from ..core.classes import IGNORE, align, index_map, mask_lut
from ..core.detection_metrics import DetectionMetrics
from ..core.segmentation_metrics import SegmentationMetrics
from ..core.tracking_metrics import TrackingMetrics
from ..core.types import Detections, FrameLabels, Tracks

log = logging.getLogger("edge_app.review.rolling")
_ALL = {"all": (0.0, 1e10)}


def _nan_to_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


class _ModelWindow:
    def __init__(self, task: str, classes: tuple[str, ...], iou: float, window: int, max_dets: int) -> None:
        self.task, self.classes = task, classes
        if task == "detection":
            self.metrics: Any = DetectionMetrics(len(classes), iou_thresholds=(iou,), area_ranges=_ALL,
                                                 max_dets=(max_dets,), window=window)
        else:
            self.metrics = SegmentationMetrics(len(classes), ignore_index=IGNORE, window=window)
        self.unjudged = 0  # labelled frames whose labels name none of the model's classes
        # identities: a tracked detector against labels that carry them (synthetic scenes, MOT sequences)
        self.tracking = TrackingMetrics(window=window) if task == "detection" else None

    def update_detection(self, det: Detections, labels: FrameLabels, now: float, tracks: Tracks | None = None) -> bool:
        if labels.truth is None:
            return False
        det, truth, judged = align(det, labels.truth, labels.classes, self.classes, labels.exhaustive)
        if tracks is not None and labels.ids is not None and self.tracking is not None and judged.any():
            # class-agnostic, as MOTChallenge: the truth of the judged classes against the confirmed tracks
            mapped = index_map(labels.classes, self.classes)[labels.truth.classes]
            keep_gt = (mapped >= 0) & judged[np.maximum(mapped, 0)]
            keep_tr = judged[tracks.classes]
            self.tracking.update(labels.truth.boxes[keep_gt], labels.ids[keep_gt], tracks.boxes[keep_tr],
                                 tracks.ids[keep_tr], now)
        if not judged.any():
            # The labels name none of the model's classes (a raccoon set against a shapes detector):
            # nothing can be judged; counted and said once, never scored as all-wrong.
            self.unjudged += 1
            if self.unjudged == 1:
                log.warning("rolling: labels name none of the classes of this %s model (%s); frames not "
                            "scored", self.task, ", ".join(self.classes))
            return False
        self.metrics.update(det, truth, timestamp=now)
        return True

    def update_mask(self, labels_pred: np.ndarray, labels: FrameLabels, now: float) -> bool:
        if labels.mask is None:
            return False
        lut = mask_lut(labels.mask_classes, self.classes, labels.ignore_index)
        truth = lut[np.clip(labels.mask, 0, 255).astype(np.uint8)]
        if truth.shape != labels_pred.shape:
            log.warning("rolling: mask %s and prediction %s differ in size; frame not scored",
                        truth.shape, labels_pred.shape)
            return False
        self.metrics.update(np.minimum(labels_pred, len(self.classes) - 1), truth, timestamp=now)
        return True


class RollingMonitor:
    """Thread-safe rolling metrics for every model; ``update`` per labelled frame, ``snapshot`` to read."""

    def __init__(self, *, iou: float = 0.5, window_frames: int = 200, window_seconds: float = 60.0,
                 precision_floor: float = 0.5, recall_floor: float = 0.5, min_labelled: int = 20,
                 max_dets: int = 100) -> None:
        self.iou, self.window_frames, self.window_seconds = iou, window_frames, window_seconds
        self.precision_floor, self.recall_floor, self.min_labelled = precision_floor, recall_floor, min_labelled
        self.max_dets = max_dets
        self._models: dict[str, _ModelWindow] = {}
        self._lock = threading.Lock()
        self.labelled_frames = 0
        self.label_errors = 0
        self._cache: tuple[float, dict[str, Any]] | None = None

    def add_model(self, name: str, task: str, classes: tuple[str, ...]) -> None:
        self._models[name] = _ModelWindow(task, classes, self.iou, self.window_frames, self.max_dets)

    def update(self, results: list[Any], labels: FrameLabels | None, now: float | None = None,
               tracks: dict[str, Tracks] | None = None) -> None:
        """Score one frame's model results (ModelResult list) against its labels; ``tracks``: {detector:
        its confirmed tracks} of the frame, scored as tracking (MOTA, IDF1) where labels carry identities."""
        if labels is None:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            scored = False
            for r in results:
                w = self._models.get(r.name)
                if w is None:
                    continue
                if r.detections is not None:
                    scored |= w.update_detection(r.detections, labels, now, (tracks or {}).get(r.name))
                elif r.mask is not None:
                    scored |= w.update_mask(r.mask.labels, labels, now)
            if scored:
                self.labelled_frames += 1
                self._cache = None

    def snapshot(self, now: float | None = None, max_age: float = 0.0) -> dict[str, Any]:
        """Current rolling numbers per model (JSON-ready); ``max_age`` allows a recent cached copy
        (the HUD and the status page ask often; computing is not free with large windows)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._cache is not None and now - self._cache[0] <= max_age:
                return self._cache[1]
            out: dict[str, Any] = {}
            for name, w in self._models.items():
                w.metrics.prune(now - self.window_seconds)
                if w.tracking is not None:
                    w.tracking.prune(now - self.window_seconds)
                out[name] = self._describe(w)
            self._cache = (now, out)
        return out

    def _describe(self, w: _ModelWindow) -> dict[str, Any]:
        frames = len(w.metrics)
        if w.task == "detection":
            r = w.metrics.compute()
            overall = r.overall()
            per_class = {c: {"precision": _nan_to_none(r.precision[i]), "recall": _nan_to_none(r.recall[i]),
                             "f1": _nan_to_none(r.f1[i]), "tp": int(r.tp[i]), "fp": int(r.fp[i]),
                             "labels": int(r.num_gt[i])} for i, c in enumerate(w.classes)}
            tracking = None
            if w.tracking is not None and len(w.tracking):
                t = w.tracking.compute()
                tracking = {"frames": t.frames, "MOTA": _nan_to_none(t.mota), "IDF1": _nan_to_none(t.idf1),
                            "IDSW": t.idsw, "MOTP": _nan_to_none(t.motp), "GT": t.num_gt}
            return {"task": "detection", "frames": frames, "iou": self.iou, "unjudged_frames": w.unjudged,
                    "tracking": tracking,
                    "precision": _nan_to_none(overall["precision"]), "recall": _nan_to_none(overall["recall"]),
                    "f1": _nan_to_none(overall["f1"]), "per_class": per_class}
        r = w.metrics.compute()
        per_class = {c: {"precision": _nan_to_none(r.precision[i]), "recall": _nan_to_none(r.recall[i]),
                         "iou": _nan_to_none(r.iou[i])} for i, c in enumerate(w.classes)}
        fg = [i for i in range(1, len(w.classes))] or [0]
        prec = np.nanmean(r.precision[fg]) if not np.all(np.isnan(r.precision[fg])) else float("nan")
        rec = np.nanmean(r.recall[fg]) if not np.all(np.isnan(r.recall[fg])) else float("nan")
        return {"task": "segmentation", "frames": frames, "miou": _nan_to_none(r.miou),
                "pixel_accuracy": _nan_to_none(r.pixel_accuracy), "precision": _nan_to_none(prec),
                "recall": _nan_to_none(rec), "per_class": per_class}

    def drift_warnings(self, snapshot: dict[str, Any]) -> list[str]:
        """Models whose rolling precision or recall is below its floor (after enough labelled frames)."""
        warnings = []
        for name, s in snapshot.items():
            if s["frames"] < self.min_labelled:
                continue
            for key, floor in (("precision", self.precision_floor), ("recall", self.recall_floor)):
                value = s.get(key)
                if value is not None and value < floor:
                    warnings.append(f"{name}: rolling {key} {value:.3f} below the floor {floor:.2f} "
                                    f"over the last {s['frames']} labelled frames")
        return warnings


def for_log(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot as the periodic log line writes it: per-class rows that measured nothing (no labels,
    no detections, every value empty) left out. An 80-class COCO model would otherwise write 80 empty rows
    per stream every log period; /status keeps them all."""
    out: dict[str, Any] = {}
    for name, s in snapshot.items():
        rows = s.get("per_class")
        if isinstance(rows, dict):
            s = {**s, "per_class": {c: v for c, v in rows.items()
                                    if any(x is not None and x != 0 for x in v.values())}}
        out[name] = s
    return out
