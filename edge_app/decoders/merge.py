"""One frame's detections from its tiles: class-aware NMS over all of them (classes of one group as one),
then fusion of the boxes a tile edge cut (the part of an object a tile saw, and the rest another tile or
the full frame saw, become one box), then the region of interest and the detection cap.
"""
from __future__ import annotations

import numpy as np

from ..core.geometry import inside_polygon
from ..core.nms import batched_nms
from ..core.types import Detections

EDGE_PX = 2.0       # a box within this of a tile's inner edge was cut by it
FUSE_IOS = 0.5      # ... and is fused with a box of the same group covering at least this much of the smaller


def cut_by_edge(boxes: np.ndarray, rects: np.ndarray, source: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """(N,) bool: the box touches an edge of its tile that is not the frame's edge."""
    if len(boxes) == 0:
        return np.zeros(0, bool)
    r = rects[source].astype(np.float32)
    w, h = frame_size
    inner = np.stack([r[:, 0] > 0, r[:, 1] > 0, r[:, 2] < w, r[:, 3] < h], 1)
    near = np.abs(boxes - r) <= EDGE_PX
    return (inner & near).any(axis=1)


def intersection_over_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) xyxy -> (N, M) intersection area / the smaller box's area."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


def merge_tiles(parts: list[Detections], rects: np.ndarray, frame_size: tuple[int, int], iou: float,
                groups: np.ndarray | None, max_detections: int, roi: tuple[np.ndarray, ...] = (),
                nms: bool = True) -> Detections:
    """Detections of each tile (frame pixels; ``rects`` (T, 4) the tiles, the full frame among them) -> the
    frame's. ``groups`` (C,): the NMS group of each class (None: its own). Families without NMS still
    need it here: one object seen by two tiles is two detections."""
    if not parts:
        return Detections.empty()
    det = Detections(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                     np.concatenate([p.classes for p in parts]))
    source = np.concatenate([np.full(len(p), i, np.int64) for i, p in enumerate(parts)])
    group = det.classes if groups is None else np.asarray(groups)[det.classes]
    keep = batched_nms(det.boxes, det.scores, group, iou)
    boxes, scores, classes = det.boxes[keep].copy(), det.scores[keep], det.classes[keep]
    source, group = source[keep], group[keep]
    if len(rects) > 1 and len(boxes) > 1:
        boxes, alive = _fuse(boxes, source, group, cut_by_edge(boxes, rects, source, frame_size))
        boxes, scores, classes = boxes[alive], scores[alive], classes[alive]
    out = Detections(boxes, scores, classes)
    if roi and len(out):
        centres = np.stack([(out.boxes[:, 0] + out.boxes[:, 2]) / 2, (out.boxes[:, 1] + out.boxes[:, 3]) / 2], 1)
        out = out.select(np.any([inside_polygon(centres, p) for p in roi], axis=0))
    return out.select(np.arange(min(len(out), max_detections)))


def _fuse(boxes: np.ndarray, source: np.ndarray, group: np.ndarray, cut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy, in score order (the input's): a box cut by a tile edge and a box of the same group from
    another tile that covers at least FUSE_IOS of the smaller one become their union (the higher-scoring
    one's score and class); returns the boxes and which survive."""
    alive = np.ones(len(boxes), bool)
    ios = intersection_over_smaller(boxes, boxes)
    same = (group[:, None] == group[None, :]) & (source[:, None] != source[None, :]) & (ios >= FUSE_IOS)
    np.fill_diagonal(same, False)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        partners = np.flatnonzero(same[i] & alive & (cut | cut[i]))
        partners = partners[partners > i]
        for j in partners.tolist():
            boxes[i, :2] = np.minimum(boxes[i, :2], boxes[j, :2])
            boxes[i, 2:] = np.maximum(boxes[i, 2:], boxes[j, 2:])
            alive[j] = False
    return boxes, alive

