"""Greedy non-maximum suppression, class-aware, in numpy.

The result is the same list of kept indices as ``torchvision.ops.batched_nms`` (score order, ties broken
by the lower index), computed the same way (float32 IoU, ``IoU > threshold`` suppresses), but without
an O(N^2) IoU matrix: boxes are swept along x within their class, so only pairs that overlap in x are
ever compared. Pairs are then resolved greedily in score order.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .types import Detections

# Candidate pairs are generated and filtered in chunks of about this many to bound memory.
_PAIR_CHUNK = 1 << 21


def _overlapping_pairs(boxes: np.ndarray, groups: np.ndarray, iou_threshold: float,
                       rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of boxes in the same group with IoU > threshold, i ranked before j.

    boxes: (N, 4) float32 xyxy; groups: (N,) int64; rank: (N,) position of each box in score order.
    Returns two (P,) index arrays (suppressor, suppressed).
    """
    n = len(boxes)
    empty = np.zeros(0, np.int64)
    if n < 2:
        return empty, empty
    # Sort by (group, x1): box p can only overlap the boxes q > p of its group whose x1 lies left of
    # its x2. With IoU > t the x-overlap must also exceed t * width(p) (inter <= overlap_x * height),
    # so the sweep stops earlier; the bound is loosened a little so float rounding never loses a pair.
    order = np.lexsort((boxes[:, 0], groups))
    sx1, sy1, sx2, sy2 = (np.ascontiguousarray(boxes[order, k]) for k in range(4))
    g_sorted = groups[order]
    x1_64 = sx1.astype(np.float64)
    width = np.maximum(sx2.astype(np.float64) - x1_64, 0.0)
    reach = sx2 - max(float(iou_threshold), 0.0) * (1 - 1e-4) * width
    stop = np.empty(n, np.int64)
    first = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    for lo_g, hi_g in zip(first.tolist(), np.r_[first[1:], n].tolist()):
        stop[lo_g:hi_g] = lo_g + np.searchsorted(x1_64[lo_g:hi_g], reach[lo_g:hi_g], side="left")
    counts = np.maximum(stop - np.arange(n) - 1, 0)
    if not counts.any():
        return empty, empty

    area = (sx2 - sx1) * (sy2 - sy1)  # float32, as torchvision computes it
    # C++ compares the float IoU with the double threshold; the same decision in float32 terms:
    t32 = np.float32(iou_threshold)
    inclusive = float(t32) > float(iou_threshold)  # t rounded up: IoU >= t32 means IoU > t
    out_p: list[np.ndarray] = []
    out_q: list[np.ndarray] = []
    cum = np.cumsum(counts)
    idx = np.int32 if n < 2**31 else np.int64
    lo = 0
    while lo < n:
        # Take as many sorted positions as fit in one chunk of pairs.
        base = cum[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(cum, base + _PAIR_CHUNK, side="right")), lo + 1)
        c = counts[lo:hi]
        pos = np.arange(lo, hi, dtype=idx)
        p = np.repeat(pos, c)
        q = np.arange(len(p), dtype=idx) + np.repeat(pos + 1 - (np.cumsum(c) - c).astype(idx), c)
        # Overlap in y first: cheap, and most x-candidates fail it.
        h = np.minimum(sy2[p], sy2[q]) - np.maximum(sy1[p], sy1[q])
        live = h > 0
        p, q, h = p[live], q[live], h[live]
        w = np.maximum(np.float32(0), np.minimum(sx2[p], sx2[q]) - np.maximum(sx1[p], sx1[q]))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            ovr = inter / (area[p] + area[q] - inter)
        hit = ovr >= t32 if inclusive else ovr > t32
        out_p.append(p[hit])
        out_q.append(q[hit])
        lo = hi
    a = order[np.concatenate(out_p)]
    b = order[np.concatenate(out_q)]
    # Direct each pair from the higher-ranked (earlier in score order) box to the other.
    swap = rank[a] > rank[b]
    return np.where(swap, b, a), np.where(swap, a, b)


def _greedy(n: int, rank_order: np.ndarray, sup_i: np.ndarray, sup_j: np.ndarray) -> np.ndarray:
    """Resolve greedy NMS from the suppression pairs; returns a (N,) bool keep mask."""
    keep = np.ones(n, bool)
    if len(sup_i) == 0:
        return keep
    # CSR adjacency: for each suppressor, the boxes it would suppress.
    by_src = np.argsort(sup_i, kind="stable")
    targets = sup_j[by_src]
    starts = np.searchsorted(sup_i[by_src], np.arange(n + 1))
    has_edges = np.zeros(n, bool)
    has_edges[sup_i] = True
    # Only boxes that can suppress something need a sequential decision; walk them in score order.
    for box in rank_order[has_edges[rank_order]].tolist():
        if keep[box]:
            keep[targets[starts[box]:starts[box + 1]]] = False
    return keep


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                iou_threshold: float) -> np.ndarray:
    """Class-aware greedy NMS: (N, 4) xyxy, (N,), (N,) int, float -> kept indices (K,) int64.

    Boxes of different classes never suppress each other. Kept indices are in decreasing score order,
    equal scores by increasing index (what ``torchvision.ops.batched_nms`` returns).
    """
    b = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float32).reshape(-1)
    c = np.asarray(classes, dtype=np.int64).reshape(-1)
    if not (len(b) == len(s) == len(c)):
        raise ValueError(f"batched_nms: lengths differ: boxes {len(b)}, scores {len(s)}, classes {len(c)}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"batched_nms: iou_threshold must be in [0, 1], got {iou_threshold}")
    n = len(b)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-s, kind="stable")  # descending score, ties by index
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    sup_i, sup_j = _overlapping_pairs(b, c, iou_threshold, rank)
    keep = _greedy(n, order, sup_i, sup_j)
    return order[keep[order]]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Class-agnostic greedy NMS: (N, 4) xyxy, (N,) -> kept indices in score order."""
    n = len(np.asarray(scores).reshape(-1))
    return batched_nms(boxes, scores, np.zeros(n, np.int64), iou_threshold)


def postprocess_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    *,
    iou_threshold: float = 0.45,
    score_threshold: float | Mapping[int, float] | np.ndarray = 0.3,
    top_k: int = 1000,
    max_detections: int = 100,
    background_class: int | None = None,
) -> Detections:
    """Per-class scores to final detections, as an SSD/DeepStream post-processor does.

    boxes: (N, 4) xyxy, one box shared by all classes, or (N, C, 4) one per class;
    scores: (N, C) per-class scores.
    score_threshold: one value, a per-class array (C,), or {class: threshold}; classes missing from a
    mapping are never reported, so a mapping names each class it keeps.
    top_k: candidates kept (by score, across classes) before NMS; max_detections: kept after NMS.
    background_class: a class column to drop (SSD's class 0), or None.
    """
    sc = np.asarray(scores, dtype=np.float32)
    if sc.ndim != 2:
        raise ValueError(f"scores: expected (N, C), got {sc.shape}")
    n, num_classes = sc.shape
    bx = np.asarray(boxes, dtype=np.float32)
    if bx.shape not in ((n, 4), (n, num_classes, 4)):
        raise ValueError(f"boxes: expected ({n}, 4) or ({n}, {num_classes}, 4), got {bx.shape}")
    thr = _per_class_thresholds(score_threshold, num_classes)
    if background_class is not None:
        thr[background_class] = np.inf
    anchor, cls = np.nonzero(sc > thr[None, :])
    cand_scores = sc[anchor, cls]
    if len(cand_scores) > top_k:
        # Keep the top_k best (ties by index order, so the choice is deterministic).
        part = np.argsort(-cand_scores, kind="stable")[:top_k]
        part.sort()
        anchor, cls, cand_scores = anchor[part], cls[part], cand_scores[part]
    cand_boxes = bx[anchor] if bx.ndim == 2 else bx[anchor, cls]
    keep = batched_nms(cand_boxes, cand_scores, cls, iou_threshold)[:max_detections]
    return Detections(cand_boxes[keep], cand_scores[keep], cls[keep])


def _per_class_thresholds(value: float | Mapping[int, float] | np.ndarray, num_classes: int) -> np.ndarray:
    if isinstance(value, Mapping):
        thr = np.full(num_classes, np.inf, np.float32)
        for k, v in value.items():
            if not 0 <= int(k) < num_classes:
                raise ValueError(f"score_threshold: class {k} out of range 0..{num_classes - 1}")
            thr[int(k)] = v
        return thr
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        return np.full(num_classes, float(arr), np.float32)
    if arr.shape != (num_classes,):
        raise ValueError(f"score_threshold: expected one value or {num_classes} values, got {arr.shape}")
    return arr.copy()
