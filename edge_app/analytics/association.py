"""Association between tracks and detections: which (track, detection) pairs may match, their IoU
without the N x M matrix on large scenes, a one-to-one assignment per connected component, and the cues
that refine the similarity (direction consistency). numpy + scipy's assignment solver only."""
from __future__ import annotations

from typing import Any

import numpy as np


def _lsap() -> Any:
    # scipy.optimize's import costs ~1 s: done once, when the first tracker is made (start-up, not a frame)
    from scipy.optimize import linear_sum_assignment
    return linear_sum_assignment


def candidate_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of xyxy boxes a (N, 4) and b (M, 4) that overlap at all, without the N x M matrix
    for large scenes: b sorted by x1; box i can only meet the b whose x1 lies in (a.x1 - widest b, a.x2).
    Small problems (N x M <= 2048) take the direct N x M test, fewer numpy calls."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(a) * len(b) <= 2048:
        hit = ((a[:, None, 0] < b[None, :, 2]) & (a[:, None, 2] > b[None, :, 0]) & (a[:, None, 1] < b[None, :, 3])
               & (a[:, None, 3] > b[None, :, 1]))
        r, c = hit.nonzero()
        return r.astype(np.int64), c.astype(np.int64)
    order = np.argsort(b[:, 0], kind="stable")
    bx1 = b[order, 0]
    widest = float((b[:, 2] - b[:, 0]).max())
    lo = np.searchsorted(bx1, a[:, 0] - widest, side="left")
    hi = np.searchsorted(bx1, a[:, 2], side="left")
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(a)), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = order[np.repeat(lo, counts) + offsets]
    ok = ((a[rows, 0] < b[cols, 2]) & (a[rows, 2] > b[cols, 0]) & (a[rows, 1] < b[cols, 3])
          & (a[rows, 3] > b[cols, 1]))
    return rows[ok], cols[ok]


def overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, IoU) of every pair of xyxy boxes a (N, 4), b (M, 4) that overlap: the direct N x M
    computation for small problems (fewest numpy calls), the sparse sweep for large ones."""
    if len(a) * len(b) <= 2048:
        w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
        h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
        r, c = ((w > 0) & (h > 0)).nonzero()
        inter = w[r, c] * h[r, c]
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        return r, c, inter / (area_a[r] + area_b[c] - inter)
    r, c = candidate_pairs(a, b)
    return r, c, pair_iou(a[r], b[c])


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row-aligned xyxy boxes a (K, 4), b (K, 4) -> (K,)."""
    w = np.maximum(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0)
    h = np.maximum(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0)
    inter = w * h
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def assign(rows: np.ndarray, cols: np.ndarray, sim: np.ndarray, n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-cardinality, then maximum-similarity one-to-one matching over the allowed pairs
    (rows[k], cols[k]) with similarity sim[k] -- what linear_sum_assignment gives on the full matrix with
    disallowed pairs priced out, solved per connected component of the pair graph (most are one pair, so
    large scenes cost what their crowded spots cost, not N x M)."""
    if len(rows) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # components by union-find over the bipartite graph (rows 0..N-1, cols N..N+M-1)
    parent = np.arange(n_rows + n_cols)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    row_deg = np.bincount(rows, minlength=n_rows)
    col_deg = np.bincount(cols, minlength=n_cols)
    simple = (row_deg[rows] == 1) & (col_deg[cols] == 1)  # a pair alone in its component: take it
    out_r, out_c = [rows[simple]], [cols[simple]]
    rest = (~simple).nonzero()[0]
    if len(rest):
        for r, c in zip(rows[rest].tolist(), cols[rest].tolist()):
            pr, pc = find(r), find(n_rows + c)
            if pr != pc:
                parent[pr] = pc
        roots = np.array([find(int(r)) for r in rows[rest]])
        lsap = _lsap()
        for root in np.unique(roots):
            k = rest[roots == root]
            ur, ri = np.unique(rows[k], return_inverse=True)
            uc, ci = np.unique(cols[k], return_inverse=True)
            cost = np.full((len(ur), len(uc)), 1e6)
            cost[ri, ci] = 1.0 - sim[k]
            a, b = lsap(cost)
            ok = cost[a, b] < 1e6
            out_r.append(ur[a[ok]])
            out_c.append(uc[b[ok]])
    return np.concatenate(out_r).astype(np.int64), np.concatenate(out_c).astype(np.int64)


def expand(boxes: np.ndarray, ratio: np.ndarray | float) -> np.ndarray:
    """xyxy boxes (N, 4) grown by ``ratio`` of their width and height on each side (C-BIoU's buffer:
    a lost track and a detection that moved apart during a gap overlap again)."""
    b = np.asarray(boxes, np.float64)
    r = np.broadcast_to(np.asarray(ratio, np.float64), (len(b),))[:, None]
    wh = np.concatenate([b[:, 2:4] - b[:, 0:2]] * 2, axis=1)
    return b + wh * r * np.array([-1.0, -1.0, 1.0, 1.0])


def direction_consistency(track_dir: np.ndarray, last_centre: np.ndarray, det_centre: np.ndarray) -> np.ndarray:
    """OC-SORT's motion-direction cue for K pairs: track_dir (K, 2) unit vectors of the track's recent
    observed motion (0 when unknown), last_centre (K, 2) its last observed centre, det_centre (K, 2) ->
    (K,) in [-0.5, 0.5]: +0.5 when the detection lies straight ahead, -0.5 straight behind, 0 when the
    direction is unknown or perpendicular."""
    d = det_centre - last_centre
    norm = np.hypot(d[:, 0], d[:, 1])
    d = d / np.maximum(norm, 1e-6)[:, None]
    cos = np.clip((d * track_dir).sum(axis=1), -1.0, 1.0)
    known = (np.abs(track_dir).sum(axis=1) > 0) & (norm > 1e-6)
    return np.where(known, (np.pi / 2 - np.arccos(cos)) / np.pi, 0.0)


def covered(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each xyxy box of a (N, 4): the largest share of its area inside one box of b (M, 4), and that
    box's index (-1: none) -> (N,), (N,)."""
    share, by = np.zeros(len(a)), np.full(len(a), -1, np.int64)
    r, c = candidate_pairs(a, b)
    if len(r) == 0:
        return share, by
    w = np.minimum(a[r, 2], b[c, 2]) - np.maximum(a[r, 0], b[c, 0])
    h = np.minimum(a[r, 3], b[c, 3]) - np.maximum(a[r, 1], b[c, 1])
    area = np.maximum((a[r, 2] - a[r, 0]) * (a[r, 3] - a[r, 1]), 1e-9)
    f = np.clip(w, 0, None) * np.clip(h, 0, None) / area
    order = np.argsort(f, kind="stable")  # the largest share per row written last
    share[r[order]], by[r[order]] = f[order], c[order]
    return share, by


def shape_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-aligned xyxy boxes a (K, 4), b (K, 4) -> (K,) in (0, 1]: 1 for boxes of one width and height,
    falling with the relative difference of each (BoostTrack's shape cue)."""
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    wb, hb = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    dw = np.abs(wa - wb) / np.maximum(np.maximum(wa, wb), 1e-9)
    dh = np.abs(ha - hb) / np.maximum(np.maximum(ha, hb), 1e-9)
    return np.exp(-(dw + dh))


def likelihood_share(rows: np.ndarray, d2: np.ndarray, limit: float) -> np.ndarray:
    """For K allowed (track, detection) pairs: rows (K,) the track of each, d2 (K,) its squared Mahalanobis
    distance -> (K,) the pair's share of its track's Gaussian likelihood over the track's pairs (0 beyond
    ``limit``): among the detections a track may take, how much more the motion explains this one."""
    lik = np.where(d2 <= limit, np.exp(-0.5 * np.minimum(d2, limit)), 0.0)
    total = np.zeros(int(rows.max()) + 1 if len(rows) else 0)
    np.add.at(total, rows, lik)
    return np.where(lik > 0, lik / np.maximum(total[rows], 1e-300), 0.0)


def strongest_apart(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """(N,) mask of the boxes (N, 4) no overlapping (IoU > iou) box outscores: one box per cluster of
    overlapping weak detections (ties: the first)."""
    keep = np.ones(len(boxes), bool)
    r, c, v = overlaps(boxes, boxes)
    over = (r != c) & (v > iou)
    r, c = r[over], c[over]
    beaten = (scores[c] > scores[r]) | ((scores[c] == scores[r]) & (c < r))
    keep[r[beaten]] = False
    return keep
