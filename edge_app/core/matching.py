"""Matching detections to ground truth with COCO's rules.

One image and one class at a time: detections are taken in decreasing score order, each matches the
still-free ground truth with the highest IoU at or above the threshold; a crowd ground truth may absorb
any number of detections; a detection matched to an ignored ground truth (crowd, ``ignore``/difficult,
or outside the area range) counts neither as TP nor FP, nor does an unmatched detection whose own area is
outside the range. This is what ``pycocotools.COCOeval.evaluateImg`` does, vectorised over thresholds,
so the runtime's rolling window and the offline evaluation share it and agree exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import coco_iou_xywh

# COCO's thresholds, built the way pycocotools builds them so that equality lookups (0.5, 0.75) agree.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, int(np.round(1.0 / 0.01)) + 1, endpoint=True)
COCO_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5 ** 2),
    "small": (0.0, 32.0 ** 2),
    "medium": (32.0 ** 2, 96.0 ** 2),
    "large": (96.0 ** 2, 1e5 ** 2),
}
COCO_MAX_DETS = (1, 10, 100)


@dataclass(frozen=True)
class ClassMatch:
    """Matching of one class in one image.

    scores: (D,) detection scores, decreasing (at most max_dets kept);
    matched: (A, T, D) bool, detection matched a ground truth at threshold t in area range a;
    ignored: (A, T, D) bool, detection counts neither as TP nor FP;
    num_gt: (A,) int, ground truths that count (not ignored) in each area range.
    """

    scores: np.ndarray
    matched: np.ndarray
    ignored: np.ndarray
    num_gt: np.ndarray


def match_class(
    dt_xywh: np.ndarray,
    dt_scores: np.ndarray,
    gt_xywh: np.ndarray,
    gt_crowd: np.ndarray,
    gt_ignore: np.ndarray,
    gt_area: np.ndarray,
    iou_thresholds: np.ndarray,
    area_ranges: np.ndarray,
    max_dets: int,
) -> ClassMatch:
    """Match the detections of one class in one image (COCO rules).

    dt_xywh: (D, 4) float64; dt_scores: (D,); gt_xywh: (G, 4) float64; gt_crowd, gt_ignore: (G,) bool;
    gt_area: (G,) float64; iou_thresholds: (T,); area_ranges: (A, 2) inclusive [lo, hi].
    """
    thr = np.minimum(np.asarray(iou_thresholds, np.float64), 1 - 1e-10)
    ranges = np.asarray(area_ranges, np.float64).reshape(-1, 2)
    n_a, n_t = len(ranges), len(thr)
    order = np.argsort(-np.asarray(dt_scores, np.float64), kind="mergesort")[:max_dets]
    dt = np.asarray(dt_xywh, np.float64).reshape(-1, 4)[order]
    scores = np.asarray(dt_scores)[order]
    gt = np.asarray(gt_xywh, np.float64).reshape(-1, 4)
    crowd = np.asarray(gt_crowd, bool)
    n_d, n_g = len(dt), len(gt)
    matched = np.zeros((n_a, n_t, n_d), bool)
    ignored = np.zeros((n_a, n_t, n_d), bool)
    num_gt = np.zeros(n_a, np.int64)
    dt_area = dt[:, 2] * dt[:, 3]
    ious = coco_iou_xywh(dt, gt, crowd) if n_d and n_g else np.zeros((n_d, n_g))
    for a, (lo, hi) in enumerate(ranges):
        g_ig = np.asarray(gt_ignore, bool) | crowd | (gt_area < lo) | (gt_area > hi)
        num_gt[a] = int(np.count_nonzero(~g_ig))
        if n_d == 0:
            continue
        if n_g:
            g_order = np.argsort(g_ig, kind="mergesort")  # counted ground truths first
            _greedy_match(ious[:, g_order], g_ig[g_order], crowd[g_order], thr,
                          matched[a], ignored[a])
        outside = (dt_area < lo) | (dt_area > hi)
        ignored[a] |= ~matched[a] & outside[None, :]
    return ClassMatch(scores, matched, ignored, num_gt)


def _greedy_match(ious: np.ndarray, g_ig: np.ndarray, crowd: np.ndarray, thr: np.ndarray,
                  matched: np.ndarray, ignored: np.ndarray) -> None:
    """COCO's greedy assignment for all thresholds at once; fills matched/ignored (T, D) in place.

    ious: (D, G) with ground truths ordered counted-first. For each detection, the best free ground
    truth wins, a counted one before an ignored one; among equal IoUs the last one wins (as in COCO).
    """
    n_t = len(thr)
    n_g = ious.shape[1]
    taken = np.zeros((n_t, n_g), bool)
    rows = np.arange(n_t)
    for d in range(ious.shape[0]):
        row = ious[d]
        cand = (~taken | crowd[None, :]) & (row[None, :] >= thr[:, None])
        if not cand.any():
            continue
        counted = cand & ~g_ig[None, :]
        use = np.where(counted.any(axis=1, keepdims=True), counted, cand)
        found = use.any(axis=1)
        scored = np.where(use, row[None, :], -1.0)
        best = n_g - 1 - np.argmax(scored[:, ::-1], axis=1)  # last of equal maxima
        t_idx = rows[found]
        g_idx = best[found]
        matched[t_idx, d] = True
        ignored[t_idx, d] = g_ig[g_idx]
        taken[t_idx, g_idx] = True
