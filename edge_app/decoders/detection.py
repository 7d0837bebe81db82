"""SSD-style detection outputs -> Detections: per-class thresholds, top-k, class-aware NMS, max detections.

The graph gives decoded boxes (1, A, 4) xyxy in network-input pixels and per-class scores (1, A, C')
(softmax with a background column, or sigmoid without); NMS runs here, in the core, not in the graph.
"""
from __future__ import annotations

import threading
import time

from collections.abc import Mapping

import numpy as np

from ..core.artifact import ArtifactMeta
from ..core.nms import postprocess_detections
from ..core.operating_point import DETECTOR
from ..core.preprocess import Letterbox
from ..core.types import Detections


class DetectionDecoder:
    def __init__(self, meta: ArtifactMeta, *, score_threshold: float | np.ndarray = DETECTOR.score_threshold,
                 iou_threshold: float = DETECTOR.nms_iou, top_k: int = DETECTOR.top_k,
                 max_detections: int = DETECTOR.max_detections) -> None:
        self._last = threading.local()  # several inference workers decode at once: each sees its own timings
        self.meta = meta
        self.boxes_name = meta.outputs.get("boxes", "boxes")
        self.scores_name = meta.outputs.get("scores", "scores")
        self.iou_threshold = iou_threshold
        self.top_k = top_k
        self.max_detections = max_detections
        self.default_threshold = float(np.max(score_threshold))
        self.set_thresholds(score_threshold)

    @property
    def timings(self) -> dict[str, float]:
        """Seconds of the last call on this thread (``nms``: score threshold, top-k and NMS)."""
        return getattr(self._last, "timings", {})

    def set_thresholds(self, score_threshold: float | np.ndarray | Mapping[str, float],
                       iou_threshold: float | None = None) -> None:
        """Per-class score thresholds: one value, a (C,) array, or {class name: value} (classes not
        named keep the configured default); a score equal to its threshold is kept. Called again on
        reload (SIGHUP)."""
        n = self.meta.num_classes
        if isinstance(score_threshold, Mapping):
            unknown = sorted(set(score_threshold) - set(self.meta.classes))
            if unknown:
                raise ValueError(f"thresholds name unknown classes {unknown}; artifact has {list(self.meta.classes)}")
            thr = np.array([score_threshold.get(c, self.default_threshold) for c in self.meta.classes])
        else:
            thr = np.broadcast_to(np.asarray(score_threshold, np.float32), (n,))
        self.score_thresholds = np.array(thr, np.float32)
        if iou_threshold is not None:
            self.iou_threshold = iou_threshold

    def __call__(self, outputs: Mapping[str, np.ndarray], geo: Letterbox) -> Detections:
        boxes = np.asarray(outputs[self.boxes_name])[0]
        scores = np.asarray(outputs[self.scores_name])[0]
        if self.meta.background:
            scores = scores[:, 1:]
        if scores.shape[1] != self.meta.num_classes:
            raise ValueError(f"scores have {scores.shape[1]} classes, metadata names {self.meta.num_classes}")
        t0 = time.perf_counter()
        det = postprocess_detections(boxes, scores, iou_threshold=self.iou_threshold,
                                     score_threshold=self.score_thresholds, top_k=self.top_k,
                                     max_detections=self.max_detections)
        self._last.timings = {"nms": time.perf_counter() - t0}
        return Detections(geo.boxes_to_frame(det.boxes), det.scores, det.classes)
