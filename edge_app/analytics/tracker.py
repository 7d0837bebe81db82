"""A ByteTrack-style multi-object tracker: two-stage association, a Kalman constant-velocity motion model,
birth after N hits, a lost buffer in seconds, per-class tracks, IoU gating.

Per frame (``update(detections, t)``):
1. every track is predicted to time ``t`` (seconds: the buffer and the motion hold at any frame rate);
2. tracked and lost tracks are matched to the high-score detections (IoU, optionally weighted by the
   detection score), gated at ``match_iou``; 3. tracks still unmatched that were tracked last frame get
   a second chance with the low-score detections (``low_iou``): a partly occluded object keeps its
   identity on a weak detection instead of being dropped; 4. tentative tracks (not yet ``min_hits``
   hits) are matched to what high-score detections remain (``tentative_iou``), and die on a miss;
5. high-score detections left over start tentative tracks; tracks lost longer than ``lost_s`` end.
Only a confirmed track has an identity: ids are given at confirmation, in order, never reused.
Classes never mix: a track matches detections of its own class only.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..config.schema import TrackerConfig
from ..core.types import Detections, Tracks
from . import kalman

TENTATIVE, TRACKED, LOST = 0, 1, 2


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


class Tracker:
    """One stream's tracker: ``update(detections, t) -> Tracks`` (confirmed, updated this frame)."""

    def __init__(self, settings: TrackerConfig | None = None, groups: np.ndarray | None = None) -> None:
        """settings: the detector's ``[models.NAME.tracker]`` table (defaults: ByteTrack's MOT17
        thresholds, with min_hits 3, a 2 s buffer and a loose tentative gate, chosen on the shared
        MOTChallenge public detections; see the README). groups: (C,) the class group of each class id
        (the detector's class_groups): classes of one group match one track (a car seen as a truck)."""
        self.s = settings or TrackerConfig()
        self.groups = None if groups is None else np.asarray(groups, np.int64)
        _lsap()  # import the solver now, not on a frame
        self.reset()

    def reset(self) -> None:
        """Forget every track (a stream that starts again); identities are never reused."""
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 3, 4))    # per-quantity covariance blocks (kalman.py)
        self.ids = np.zeros(0, np.int64)       # -1 while tentative
        self.classes = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float32)
        self.hits = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int64)
        self.seen = np.zeros(0)                # time of the last match
        self.t: float | None = None
        self.next_id = getattr(self, "next_id", 1)
        self.confirmed_total = getattr(self, "confirmed_total", 0)

    def __len__(self) -> int:
        return len(self.ids)

    def _keep(self, mask: np.ndarray) -> None:
        for name in ("mean", "cov", "ids", "classes", "scores", "hits", "state", "seen"):
            setattr(self, name, getattr(self, name)[mask])

    def _match(self, boxes: np.ndarray, tracks: np.ndarray, det_idx: np.ndarray, det: Detections,
               threshold: float, fuse: bool) -> tuple[np.ndarray, np.ndarray]:
        """Match track indices to detection indices: same class and IoU >= threshold (the gate); among
        those, the assignment maximises IoU, weighted by detection score when ``fuse``.
        boxes: (T, 4) every track's predicted box."""
        if len(tracks) == 0 or len(det_idx) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        r, c, iou = overlaps(boxes[tracks], det.boxes[det_idx].astype(np.float64))
        tr, de = tracks[r], det_idx[c]
        g = self.groups
        same = (self.classes[tr] == det.classes[de]) if g is None else (g[self.classes[tr]] == g[det.classes[de]])
        ok = (iou >= threshold) & same
        r, c, iou = r[ok], c[ok], iou[ok]
        sim = iou * det.scores[de[ok]] if fuse else iou
        mr, mc = assign(r, c, sim, len(tracks), len(det_idx))
        return tracks[mr], det_idx[mc]

    def _apply(self, tracks: np.ndarray, dets: np.ndarray, det: Detections, t: float) -> None:
        if len(tracks) == 0:
            return
        z = kalman.xyxy_to_xyah(det.boxes[dets])
        self.mean[tracks], self.cov[tracks] = kalman.update(self.mean[tracks], self.cov[tracks], z)
        self.scores[tracks] = det.scores[dets]
        self.hits[tracks] += 1
        self.seen[tracks] = t
        self.state[tracks[self.state[tracks] == LOST]] = TRACKED
        grown = tracks[(self.state[tracks] == TENTATIVE) & (self.hits[tracks] >= self.s.min_hits)]
        if len(grown):  # confirmation: the only place an id is given
            self.ids[grown] = np.arange(self.next_id, self.next_id + len(grown))
            self.next_id += len(grown)
            self.state[grown] = TRACKED
            self.confirmed_total += len(grown)

    def update(self, det: Detections, t: float) -> Tracks:
        """detections of one frame at time ``t`` (seconds, increasing) -> the confirmed tracks it updated."""
        s = self.s
        dt = 0.0 if self.t is None else max(0.0, t - self.t)
        self.t = t
        self.mean, self.cov = kalman.predict(self.mean, self.cov, dt)
        boxes = kalman.xyah_to_xyxy(self.mean) if len(self) else np.zeros((0, 4))
        scores = det.scores
        high = (scores >= s.high_score).nonzero()[0]
        low = ((scores >= s.low_score) & (scores < s.high_score)).nonzero()[0]
        before = self.state.copy()
        matched = np.zeros(len(self), bool)
        used = np.zeros(len(det), bool)
        # Every stage matches predicted boxes; the Kalman corrections are applied once, at the end.
        # 1. confirmed (tracked or lost) tracks vs high-score detections
        t1, d1 = self._match(boxes, (before != TENTATIVE).nonzero()[0], high, det, s.match_iou, s.fuse_score)
        matched[t1], used[d1] = True, True
        # 2. tracks that were tracked last frame and are still unmatched vs low-score detections
        second = (before == TRACKED) | ((before == LOST) & s.low_revives_lost)
        t2, d2 = self._match(boxes, (second & ~matched).nonzero()[0], low, det, s.low_iou, False)
        matched[t2], used[d2] = True, True
        # 3. tentative tracks vs the high-score detections left
        t3, d3 = self._match(boxes, (before == TENTATIVE).nonzero()[0], high[~used[high]], det,
                             s.tentative_iou, s.fuse_score)
        matched[t3], used[d3] = True, True
        self.state[(before == TRACKED) & ~matched] = LOST
        self._apply(np.concatenate([t1, t2, t3]), np.concatenate([d1, d2, d3]), det, t)
        # tentative tracks that missed die; lost tracks past the buffer end
        dead = ((before == TENTATIVE) & ~matched) | ((self.state == LOST) & (t - self.seen > s.lost_s))
        out_mask = matched & (self.state == TRACKED)
        out_idx = (out_mask).nonzero()[0]
        if s.report == "detection":  # the box the detector saw this frame, with the track's identity
            box_of = np.zeros((len(self), 4))
            box_of[np.concatenate([t1, t2, t3])] = det.boxes[np.concatenate([d1, d2, d3])]
            out_boxes = box_of[out_idx]
        else:
            out_boxes = kalman.xyah_to_xyxy(self.mean[out_idx]) if len(out_idx) else np.zeros((0, 4))
        out_ids, out_cls, out_sc = self.ids[out_idx], self.classes[out_idx], self.scores[out_idx]
        if dead.any():
            self._keep(~dead)
        # 5. births from the high-score detections nobody took
        born = high[~used[high] & (scores[high] >= s.new_track_score)]
        if len(born):
            mean, cov = kalman.initiate(kalman.xyxy_to_xyah(det.boxes[born]))
            confirmed_now = s.min_hits <= 1
            ids = np.arange(self.next_id, self.next_id + len(born)) if confirmed_now else np.full(len(born), -1)
            if confirmed_now:
                self.next_id += len(born)
                self.confirmed_total += len(born)
                out_boxes = np.concatenate([out_boxes, det.boxes[born]])
                out_ids = np.concatenate([out_ids, ids])
                out_cls = np.concatenate([out_cls, det.classes[born]])
                out_sc = np.concatenate([out_sc, scores[born]])
            self.mean = np.concatenate([self.mean, mean])
            self.cov = np.concatenate([self.cov, cov])
            self.ids = np.concatenate([self.ids, ids.astype(np.int64)])
            self.classes = np.concatenate([self.classes, det.classes[born]])
            self.scores = np.concatenate([self.scores, scores[born]])
            self.hits = np.concatenate([self.hits, np.ones(len(born), np.int64)])
            self.state = np.concatenate([self.state, np.full(len(born), TRACKED if confirmed_now else TENTATIVE)])
            self.seen = np.concatenate([self.seen, np.full(len(born), t)])
        return Tracks(out_boxes, out_ids, out_cls, out_sc, missed=int(((before == TRACKED) & ~matched).sum()))

    def counts(self) -> dict[str, int]:
        return {"tentative": int((self.state == TENTATIVE).sum()), "tracked": int((self.state == TRACKED).sum()),
                "lost": int((self.state == LOST).sum()), "confirmed_total": self.confirmed_total}
