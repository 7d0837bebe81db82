"""Greedy non-maximum suppression, class-aware, in numpy.

The result is the same list of kept indices as ``torchvision.ops.batched_nms`` (score order, ties broken
by the lower index), computed the same way (float32 IoU, ``IoU > threshold`` suppresses), without an
O(N^2) IoU matrix and without a Python loop over boxes:

* Boxes are put in score order and handled in blocks of ranks. Within a block, candidate pairs come
  from a sweep along x (sorted by class, then x1: only boxes that overlap enough in x are compared),
  and greedy suppression is resolved in "waves" (a box no live box outranks and overlaps is kept; the
  boxes it overlaps are dropped; repeat), which takes a handful of vectorised rounds.
* The boxes kept in a block then drop every later box they overlap, before those later boxes are
  paired with each other. On a detector's raw output (dense clusters) most boxes go at this step, so,
  as in torchvision's loop that skips suppressed boxes, the work follows the number of kept boxes.

IoU > t needs x-overlap > t * max(w_p, w_q) (inter <= overlap_x * height), hence |dx1| < (1-t) max(w)
and widths within a factor t of each other; the same holds for y. All search windows are widened by a
relative 1e-4 and a few float32 ulps, so rounding can only add candidates, never lose a pair.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .operating_point import DETECTOR, keep_mask
from .types import Detections

# Candidate pairs are generated and filtered in chunks of about this many to bound memory.
_PAIR_CHUNK = 1 << 20
# First block of ranks: a fraction of the remaining boxes, at least this many.
_BLOCK_FRACTION = 8
_MIN_BLOCK = 64
# Two vectorised waves settle most pairs (every box no kept box outranks, and what it overlaps); the few
# pairs left are resolved in one pass in rank order on Python ints (no numpy call per box).
_MAX_WAVES = 2
# Up to this many boxes: one dense IoU matrix (at most 128 x 128) instead of the sweep: fewer numpy calls,
# which is what a few boxes cost (a tile's candidates after the score threshold).
_DENSE = 128
# Up to this many boxes: one block (the sweep's pairs over all of them) instead of blocks of ranks.
_ONE_BLOCK = 384
# Kept x later boxes up to this many pairs: the later boxes a block's winners drop, through a dense matrix.
_DENSE_PAIRS = 16384
_ULPS = 8 * float(np.finfo(np.float32).eps)
_TINY = np.float32(np.finfo(np.float32).smallest_subnormal)
_UPPER = [np.triu(np.ones((n, n), bool), 1) for n in range(_DENSE + 1)]  # i outranks j, per size

# A compiled loop lent by a backend (backends/ort_nms.py: ONNX Runtime's NonMaxSuppression), giving the same
# keep mask: (ranked boxes (N, 4) float32, groups (N,) int64, threshold) -> (N,) bool. Used for
# _KERNEL_MIN..._KERNEL_MAX boxes, where it is faster than the numpy paths (tests/benchmarks/bench_nms.py);
# above, its loop over kept x candidates loses to the sweep.
NmsKernel = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
_KERNEL: NmsKernel | None = None
_KERNEL_MIN = 32
_KERNEL_MAX = 3000


def use_kernel(kernel: NmsKernel | None) -> None:
    """Install (or, with None, remove) the compiled kernel batched_nms calls for mid-size inputs."""
    global _KERNEL
    _KERNEL = kernel


def kernel() -> NmsKernel | None:
    """The installed kernel, or None (numpy only)."""
    return _KERNEL


def _iou_above(x1p, y1p, x2p, y2p, x1q, y1q, x2q, y2q, t: float, ap=None, aq=None) -> np.ndarray:
    """Elementwise float32 IoU > t, computed as torchvision's CPU kernel does (arrays (P,), or broadcasting
    (K, 1) against (M,)); ``ap``, ``aq``: the boxes' areas, when computed once per box already."""
    w = np.minimum(x2p, x2q)
    w -= np.maximum(x1p, x1q)
    np.maximum(w, np.float32(0), out=w)
    h = np.minimum(y2p, y2q)
    h -= np.maximum(y1p, y1q)
    np.maximum(h, np.float32(0), out=h)
    inter = np.multiply(w, h, out=w)
    # (area_p + area_q) - inter, in that order, as the C++ kernel: the same float32 rounding
    union = ((x2p - x1p) * (y2p - y1p) if ap is None else ap) + ((x2q - x1q) * (y2q - y1q) if aq is None else aq)
    union -= inter
    # union <= 0 only for degenerate boxes, whose inter is 0: torchvision's 0/0 or 0/negative is never
    # above t, nor is 0 / the smallest positive float (any positive union is at least that: unchanged).
    ovr = np.divide(inter, np.maximum(union, _TINY, out=union), out=inter)
    # C++ compares the float IoU with the double threshold; the same decision in float32 terms:
    t32 = np.float32(t)
    return ovr >= t32 if float(t32) > float(t) else ovr > t32


def _pairs_within(b: np.ndarray, groups: np.ndarray, t: float, slack: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of same-group boxes with IoU > t.

    b: (N, 4) float32 xyxy in score order (index = rank); groups: (N,) int64; slack: absolute
    widening of the windows (a few float32 ulps of the largest coordinate).
    Returns (src, dst) int64 (P,) with src < dst: src outranks dst.
    """
    n = len(b)
    empty = np.zeros(0, np.int64)
    if n < 2:
        return empty, empty
    x1 = b[:, 0].astype(np.float64)
    w = np.maximum(b[:, 2].astype(np.float64) - x1, 0.0)
    lo_x, span = float(x1.min()), float(np.ptp(x1) + w.max()) + 2.0
    # One sorted key (group, x1) so a single searchsorted finds every box's sweep window.
    key = (groups - groups.min()) * span + (x1 - lo_x)
    order = np.argsort(key)  # ties may go either way: pairs are re-oriented by rank below
    skey = key[order]
    reach = key + w - t * (1 - 1e-4) * w + (slack + 1e-9 * span)  # x1_q must lie left of x2_p - t * w_p
    stop = np.searchsorted(skey, reach[order], side="left")
    counts = np.maximum(stop - np.arange(n) - 1, 0)
    if not counts.any():
        return empty, empty
    sb = b[order]
    sx1, sy1, sx2, sy2 = (np.ascontiguousarray(sb[:, k]) for k in range(4))
    # y-overlap must exceed t * h_p: y1_q < y2_p - t h_p and y2_q > y1_p + t h_p (loosened).
    th = np.float32(t * (1 - 1e-4)) * (sy2 - sy1)
    top = sy2 - th + np.float32(slack)
    bot = sy1 + th - np.float32(slack)
    out_p: list[np.ndarray] = []
    out_q: list[np.ndarray] = []
    cum = np.cumsum(counts)
    idx = np.int32 if n < 2**31 else np.int64
    lo = 0
    while lo < n:
        # As many sorted positions as fit in one chunk of candidate pairs.
        base = cum[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(cum, base + _PAIR_CHUNK, side="right")), lo + 1)
        c = counts[lo:hi]
        pos = np.arange(lo, hi, dtype=idx)
        p = np.repeat(pos, c)
        q = np.arange(len(p), dtype=idx) + np.repeat(pos + 1 - (np.cumsum(c) - c).astype(idx), c)
        live = (sy1[q] < np.repeat(top[lo:hi], c)) & (sy2[q] > np.repeat(bot[lo:hi], c))
        p, q = p[live], q[live]
        hit = _iou_above(sx1[p], sy1[p], sx2[p], sy2[p], sx1[q], sy1[q], sx2[q], sy2[q], t)
        out_p.append(p[hit])
        out_q.append(q[hit])
        lo = hi
    a = order[np.concatenate(out_p)]
    z = order[np.concatenate(out_q)]
    return np.minimum(a, z), np.maximum(a, z)


def _suppressed_by(kept: np.ndarray, gk: np.ndarray, later: np.ndarray, gl: np.ndarray,
                   t: float, slack: float) -> np.ndarray:
    """(M,) bool: which of the later boxes (M, 4) some kept box (K, 4) of the same group overlaps > t."""
    out = np.zeros(len(later), bool)
    if len(kept) == 0 or len(later) == 0:
        return out
    if len(kept) * len(later) <= _DENSE_PAIRS:
        k1, k2, l1, l2 = kept[:, None, 0], kept[:, None, 2], later[:, 0], later[:, 2]
        hit = _iou_above(k1, kept[:, None, 1], k2, kept[:, None, 3], l1, later[:, 1], l2, later[:, 3], t,
                         (k2 - k1) * (kept[:, None, 3] - kept[:, None, 1]), (l2 - l1) * (later[:, 3] - later[:, 1]))
        return (hit & (gk[:, None] == gl[None, :])).any(axis=0)
    kx1 = kept[:, 0].astype(np.float64)
    lx1 = later[:, 0].astype(np.float64)
    wl = np.maximum(later[:, 2] - later[:, 0], np.float32(0)).astype(np.float64)
    wk_max = float(np.max(np.maximum(kept[:, 2] - kept[:, 0], 0)))
    # |dx1| < (1-t) max(w_k, w_l), and w_k < w_l / t (else the IoU cannot exceed t).
    rad = (1 - t) * np.maximum(wl, np.minimum(wk_max, wl / max(t, 1e-12)))
    lo_x = float(min(kx1.min(), lx1.min()))
    span = float(max(kx1.max(), lx1.max()) - lo_x + 2 * rad.max()) + 2.0
    g0 = min(int(gk.min()), int(gl.min()))
    kkey = (gk - g0) * span + (kx1 - lo_x)
    ko = np.argsort(kkey)
    skey = kkey[ko]
    ks = kept[ko]
    kx1s, ky1s, kx2s, ky2s = (np.ascontiguousarray(ks[:, k]) for k in range(4))
    lkey = (gl - g0) * span + (lx1 - lo_x)
    rad = rad * (1 + 1e-4) + (slack + 1e-9 * span)
    start = np.searchsorted(skey, lkey - rad, side="left")
    c = np.maximum(np.searchsorted(skey, lkey + rad, side="right") - start, 0)
    total = int(c.sum())
    if total == 0:
        return out
    idx = np.int32 if max(len(kept), len(later), total) < 2**31 else np.int64
    lq = np.repeat(np.arange(len(later), dtype=idx), c)
    kp = np.arange(total, dtype=idx) + np.repeat((start - (np.cumsum(c) - c)).astype(idx), c)
    lx1f, ly1, lx2, ly2 = (np.ascontiguousarray(later[:, k]) for k in range(4))
    # The y-overlap must exceed t * h_later (and be positive).
    need = np.maximum(np.float32(t * (1 - 1e-4)) * (ly2 - ly1), np.float32(0))
    oy = np.minimum(ky2s[kp], ly2[lq]) - np.maximum(ky1s[kp], ly1[lq])
    live = oy > need[lq]
    kp, lq = kp[live], lq[live]
    hit = _iou_above(kx1s[kp], ky1s[kp], kx2s[kp], ky2s[kp], lx1f[lq], ly1[lq], lx2[lq], ly2[lq], t)
    out[lq[hit]] = True
    return out


def _greedy(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Greedy NMS from suppression pairs over ranks 0..n-1 (src outranks dst): (n,) bool keep mask."""
    keep = np.ones(n, bool)
    for _ in range(_MAX_WAVES):
        if len(src) == 0:
            return keep
        # A box that no remaining pair suppresses is kept; every box it overlaps goes.
        suppressed = np.zeros(n, bool)
        suppressed[dst] = True
        root = ~suppressed[src]
        keep[dst[root]] = False
        # Pairs from a root are settled; pairs touching a dropped box can no longer matter.
        live = ~root & keep[src] & keep[dst]
        src, dst = src[live], dst[live]
    if len(src) == 0:
        return keep
    # The rest in rank order: a box's fate is final once every pair that could drop it (a smaller src) is seen.
    by = np.argsort(src, kind="stable")
    dead = bytearray((~keep).tobytes())
    last, alive = -1, True
    for a, z in zip(src[by].tolist(), dst[by].tolist()):
        if a != last:
            last, alive = a, not dead[a]
        if alive:
            dead[z] = 1
    return np.frombuffer(bytes(dead), np.uint8) == 0


def _dense(b: np.ndarray, groups: np.ndarray, t: float) -> np.ndarray:
    """Greedy NMS of a few boxes (score order) through their full IoU matrix: (n,) bool keep mask.

    The greedy result is the fixed point of keep[j] = no kept i < j overlaps j: iterated from "all kept",
    each round settles at least one more rank of the suppression chains (a handful on real clusters), two
    numpy calls a round instead of a Python step per box."""
    n = len(b)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1) * (y2 - y1)
    over = _iou_above(x1[:, None], y1[:, None], x2[:, None], y2[:, None], x1, y1, x2, y2, t, area[:, None], area)
    over &= groups[:, None] == groups[None, :]
    over &= _UPPER[n]
    keep = np.ones(n, bool)
    hit = np.empty(n, bool)
    for _ in range(n):
        np.logical_or.reduce(over, axis=0, where=keep[:, None], out=hit)
        if not (hit == keep).any():  # keep == ~hit: the fixed point
            break
        np.logical_not(hit, out=keep)
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
    t = float(iou_threshold)
    order = np.argsort(-s, kind="stable")  # descending score, ties by index
    rb, rc = b[order], c[order]
    k = _KERNEL
    # The kernel orders each box's corners itself (torchvision does not): flipped or NaN boxes stay here.
    if (k is not None and _KERNEL_MIN <= len(b) <= _KERNEL_MAX
            and bool(np.all(rb[:, 2:] >= rb[:, :2]))):
        return order[k(rb, rc, t)]
    if len(b) <= _DENSE:
        return order[_dense(rb, rc, t)]
    slack = _ULPS * max(float(np.abs(b).max(initial=0.0)), 1.0)
    rest = np.arange(len(b))  # ranks still undecided, ascending
    kept: list[np.ndarray] = []
    sparse = len(b) <= _ONE_BLOCK
    while len(rest):
        small = sparse or len(rest) <= _MIN_BLOCK
        m = len(rest) if small else max(_MIN_BLOCK, len(rest) // _BLOCK_FRACTION)
        block, rest = rest[:m], rest[m:]
        if m <= _DENSE:
            winners = block[_dense(rb[block], rc[block], t)]
        else:
            src, dst = _pairs_within(rb[block], rc[block], t, slack)
            winners = block[_greedy(m, src, dst)]
        kept.append(winners)
        if len(rest):
            rest = rest[~_suppressed_by(rb[winners], rc[winners], rb[rest], rc[rest], t, slack)]
            # Most of the block survived: few boxes overlap, so blocking would not pay; one more block.
            sparse = 2 * len(winners) > m
    return order[np.concatenate(kept)] if kept else np.zeros(0, np.int64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Class-agnostic greedy NMS: (N, 4) xyxy, (N,) -> kept indices in score order."""
    n = len(np.asarray(scores).reshape(-1))
    return batched_nms(boxes, scores, np.zeros(n, np.int64), iou_threshold)


def postprocess_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    *,
    iou_threshold: float = DETECTOR.nms_iou,
    score_threshold: float | Mapping[int, float] | np.ndarray = DETECTOR.score_threshold,
    top_k: int = DETECTOR.top_k,
    max_detections: int = DETECTOR.max_detections,
    background_class: int | None = None,
    best_class_only: bool = False,
    nms: bool = True,
    groups: np.ndarray | None = None,
) -> Detections:
    """Per-class scores to final detections, as an SSD/DeepStream post-processor does.

    boxes: (N, 4) xyxy, one box shared by all classes, or (N, C, 4) one per class;
    scores: (N, C) per-class scores.
    score_threshold: one value, a per-class array (C,), or {class: threshold}; classes missing from a
    mapping are never reported, so a mapping names each class it keeps. A score equal to its class
    threshold is kept (``operating_point.keep_mask``).
    top_k: candidates kept (by score, across classes) before NMS; max_detections: kept after NMS.
    background_class: a class column to drop (SSD's class 0), or None.
    best_class_only: a box is a candidate for its best class only (YOLO's and DETR's rule), not for every
    class above its threshold (SSD's, NanoDet's). nms: False for families whose output needs none (DETR,
    YOLOv10): thresholds, top-k and the cap only. groups: (C,) int, the NMS group of each class: boxes of
    classes in one group suppress each other (a car seen as a truck too is one object); None = each
    class its own group.
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
    if best_class_only:
        best = sc.argmax(axis=1) if num_classes else np.zeros(n, np.int64)
        top = sc[np.arange(n), best] if n else np.zeros(0, np.float32)
        anchor = np.flatnonzero(keep_mask(top, thr[best]))
        cls = best[anchor].astype(np.int64)
    else:
        anchor, cls = np.nonzero(keep_mask(sc, thr[None, :]))
    cand_scores = sc[anchor, cls]
    if len(cand_scores) > top_k:
        # Keep the top_k best (ties by index order, so the choice is deterministic).
        part = np.argsort(-cand_scores, kind="stable")[:top_k]
        part.sort()
        anchor, cls, cand_scores = anchor[part], cls[part], cand_scores[part]
    cand_boxes = bx[anchor] if bx.ndim == 2 else bx[anchor, cls]
    if nms:
        keep = batched_nms(cand_boxes, cand_scores, cls if groups is None else np.asarray(groups)[cls],
                           iou_threshold)[:max_detections]
    else:
        keep = np.argsort(-cand_scores, kind="stable")[:max_detections]
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
