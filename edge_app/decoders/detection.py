"""Detection outputs -> Detections, for every head family: the head (``heads``) turns the network's
outputs into candidate boxes and per-class scores, then the same steps for all: per-class thresholds,
top-k, class-aware NMS (classes of one group as one; none for NMS-free families), the detection cap,
boxes back to frame pixels; for a tiled frame (``frames.tiles``) every tile so, then merged
(``merge``). NMS runs here, in the core, never in the graph.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np

from ..core.artifact import ArtifactMeta
from ..core.nms import postprocess_detections
from ..core.operating_point import DETECTOR
from ..frames.preprocess import Letterbox
from ..core.types import Detections
from ..frames.tiles import Tiled
from .heads import open_head
from .merge import merge_tiles


def group_ids(classes: Sequence[str], class_groups: Mapping[str, Sequence[str]] | None) -> np.ndarray | None:
    """(C,) the NMS group of each class: classes named together in ``class_groups`` share one id; None
    without groups. A class group naming a class the model lacks is a ValueError naming it."""
    if not class_groups:
        return None
    ids = np.arange(len(classes), dtype=np.int64)
    index = {c: i for i, c in enumerate(classes)}
    for name, members in class_groups.items():
        unknown = [m for m in members if m not in index]
        if unknown:
            raise ValueError(f"class_groups.{name} names {unknown}, not classes of the model "
                             f"(it has {len(classes)}: {', '.join(list(classes)[:12])}{', ...' if len(classes) > 12 else ''})")
        first = min(index[m] for m in members)
        for m in members:
            ids[index[m]] = first
    return ids


class DetectionDecoder:
    def __init__(self, meta: ArtifactMeta, *, score_threshold: float | np.ndarray = DETECTOR.score_threshold,
                 iou_threshold: float = DETECTOR.nms_iou, top_k: int = DETECTOR.top_k,
                 max_detections: int = DETECTOR.max_detections,
                 class_groups: Mapping[str, Sequence[str]] | None = None, keep: Sequence[str] = ()) -> None:
        """keep: the classes reported (names, or class groups standing for their classes; empty: all): the
        others are never kept, whatever their score (a COCO model on a parking lot reports no kites)."""
        self._last = threading.local()  # several inference workers decode at once: each sees its own timings
        self.meta = meta
        self.head = open_head(meta)
        self.iou_threshold = iou_threshold
        self.top_k = top_k
        self.max_detections = max_detections
        self.class_groups = dict(class_groups or {})
        self.groups = group_ids(meta.classes, class_groups)
        wanted = {c for name in keep for c in self.class_groups.get(name, (name,))}
        unknown = sorted(wanted - set(meta.classes))
        if unknown:
            raise ValueError(f"keep names {unknown}: not classes (or class groups) of the model")
        self.dropped = np.array([bool(wanted) and c not in wanted for c in meta.classes], bool)  # (C,)
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
        self.score_thresholds[self.dropped] = np.inf  # classes not kept: no score reaches them
        if iou_threshold is not None:
            self.iou_threshold = iou_threshold

    def _one(self, outputs: Mapping[str, np.ndarray], i: int, geo: Letterbox) -> Detections:
        boxes, scores = self.head(outputs, i, float(self.score_thresholds.min()))
        det = postprocess_detections(boxes, scores, iou_threshold=self.iou_threshold,
                                     score_threshold=self.score_thresholds, top_k=self.top_k,
                                     max_detections=self.max_detections, best_class_only=not self.head.multi_label,
                                     nms=self.head.nms, groups=self.groups)
        return Detections(geo.boxes_to_frame(det.boxes), det.scores, det.classes)

    def __call__(self, outputs: Mapping[str, np.ndarray], geo: Letterbox | Tiled) -> Detections:
        """One frame: ``outputs`` of one image (batch row 0) with its Letterbox, or of a tiled frame (one
        row per tile) with its Tiled geometry."""
        t0 = time.perf_counter()
        if isinstance(geo, Tiled):
            parts = [self._one(outputs, i, g) for i, g in enumerate(geo.tiles)]
            det = merge_tiles(parts, geo.rects, geo.frame_size, self.iou_threshold, self.groups,
                              self.max_detections, geo.roi)
        else:
            det = self._one(outputs, 0, geo)
        self._last.timings = {"nms": time.perf_counter() - t0}
        return det
