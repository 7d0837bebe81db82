"""Tracking metrics with reset/update/compute: CLEAR MOT (MOTA, MOTP, ID switches) and
the Identity metrics (IDF1, IDP, IDR), numpy + scipy's assignment solver, for the live window.

Definitions (Bernardin & Stiefelhagen 2008; Ristani et al. 2016), with the MOTChallenge conventions:
a ground truth object and a track match in a frame when IoU >= 0.5; per frame, pairs matched in the
previous frame they met are kept whenever they still match, the rest are assigned to maximise IoU; an ID
switch is a ground truth object matched to another track than the one it was last matched to (across
gaps); MOTA = 1 - (FN + FP + IDSW) / GT. IDF1 assigns ground truth identities to track identities once
for the whole window, maximising frames matched at IoU >= 0.5. Class-agnostic, as MOTChallenge is.
The offline reference is TrackEval (``edge-app evaluate-tracks``); the tests check both agree.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from .boxes import iou_matrix

MATCH_IOU = 0.5


@dataclass(frozen=True)
class TrackingReport:
    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    idsw: int
    tp: int
    fp: int
    fn: int
    num_gt: int
    frames: int

    def as_dict(self) -> dict[str, float | int]:
        return {"MOTA": self.mota, "MOTP": self.motp, "IDF1": self.idf1, "IDP": self.idp, "IDR": self.idr,
                "IDSW": self.idsw, "TP": self.tp, "FP": self.fp, "FN": self.fn,
                "GT": self.num_gt, "frames": self.frames}


class TrackingMetrics:
    """Frames of (truth boxes + ids, track boxes + ids); ``window``: keep the last K frames (None = all)."""

    def __init__(self, window: int | None = None) -> None:
        self.window = window
        self._frames: collections.deque[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = \
            collections.deque(maxlen=window)

    def reset(self) -> None:
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)

    def update(self, gt_boxes: np.ndarray, gt_ids: np.ndarray, tr_boxes: np.ndarray, tr_ids: np.ndarray,
               timestamp: float = 0.0) -> None:
        """One frame: (G, 4) xyxy truth boxes with (G,) identities, (T, 4) xyxy tracks with (T,) ids."""
        self._frames.append((float(timestamp), np.asarray(gt_boxes, np.float64).reshape(-1, 4),
                             np.asarray(gt_ids, np.int64).reshape(-1), np.asarray(tr_boxes, np.float64).reshape(-1, 4),
                             np.asarray(tr_ids, np.int64).reshape(-1)))

    def prune(self, before: float) -> None:
        while self._frames and self._frames[0][0] < before:
            self._frames.popleft()

    def compute(self) -> TrackingReport:
        from scipy.optimize import linear_sum_assignment

        tp = fp = fn = idsw = 0
        iou_sum = 0.0
        last_match: dict[int, int] = {}     # gt id -> the track it was last matched to
        prev_pairs: set[tuple[int, int]] = set()
        pair_counts: collections.Counter[tuple[int, int]] = collections.Counter()
        gt_total: collections.Counter[int] = collections.Counter()
        tr_total: collections.Counter[int] = collections.Counter()
        for _, gb, gi, tb, ti in self._frames:
            gt_total.update(gi.tolist())
            tr_total.update(ti.tolist())
            iou = iou_matrix(gb, tb) if len(gb) and len(tb) else np.zeros((len(gb), len(tb)))
            ok = iou >= MATCH_IOU - 1e-12
            for r, c in zip(*np.nonzero(ok)):
                pair_counts[(int(gi[r]), int(ti[c]))] += 1
            # keep last frame's pairs that still match (huge score), then maximise IoU
            keep = np.array([[(int(g), int(t)) in prev_pairs for t in ti] for g in gi], bool).reshape(iou.shape)
            score = np.where(ok, iou + 1000.0 * keep, 0.0)
            if score.size:
                rows, cols = linear_sum_assignment(-score)
                good = score[rows, cols] > 0
                rows, cols = rows[good], cols[good]
            else:
                rows = cols = np.zeros(0, np.int64)
            pairs = set()
            for r, c in zip(rows.tolist(), cols.tolist()):
                g, t = int(gi[r]), int(ti[c])
                pairs.add((g, t))
                if g in last_match and last_match[g] != t:
                    idsw += 1
                last_match[g] = t
                iou_sum += float(iou[r, c])
            prev_pairs = pairs
            tp += len(pairs)
            fn += len(gi) - len(pairs)
            fp += len(ti) - len(pairs)
        num_gt = tp + fn
        mota = 1.0 - (fn + fp + idsw) / num_gt if num_gt else float("nan")
        motp = iou_sum / tp if tp else float("nan")
        idtp = 0
        if pair_counts:
            g_ids = sorted(gt_total)
            t_ids = sorted(tr_total)
            gx = {g: i for i, g in enumerate(g_ids)}
            tx = {t: i for i, t in enumerate(t_ids)}
            m = np.zeros((len(g_ids), len(t_ids)))
            for (g, t), n in pair_counts.items():
                m[gx[g], tx[t]] = n
            r, c = linear_sum_assignment(-m)
            idtp = int(m[r, c].sum())
        n_gt, n_tr = sum(gt_total.values()), sum(tr_total.values())
        idf1 = 2 * idtp / (n_gt + n_tr) if n_gt + n_tr else float("nan")
        idp = idtp / n_tr if n_tr else float("nan")
        idr = idtp / n_gt if n_gt else float("nan")
        return TrackingReport(mota, motp, idf1, idp, idr, idsw, tp, fp, fn, num_gt, len(self._frames))
