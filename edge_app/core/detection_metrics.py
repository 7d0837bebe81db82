"""Detection metrics with reset/update/compute: P, R, F1, PR curves, AP (lecture and COCO), mAP.

One object serves a whole dataset (calibration: COCO's thresholds, area ranges and max-detection
limits; ``stats`` equals ``COCOeval.stats``) and a rolling window (runtime: one IoU threshold, the last
K frames and/or T seconds).
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from .boxes import xyxy_to_xywh
from .matching import (COCO_AREA_RANGES, COCO_IOU_THRESHOLDS, COCO_MAX_DETS, COCO_RECALL_THRESHOLDS,
                       ClassMatch, match_class)
from .types import Detections, GroundTruth

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_EPS = np.spacing(1)


def lecture_ap(tp: np.ndarray, num_gt: int) -> float:
    """AP = sum_n (R_n - R_{n-1}) * P_n over a ranked list of detections (R_0 = 0), no interpolation.

    tp: (N,) bool, whether the n-th best detection is a true positive.
    """
    tp = np.asarray(tp, bool)
    if num_gt <= 0:
        return float("nan")
    if tp.size == 0:
        return 0.0
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, tp.size + 1)
    recall = ctp / num_gt
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


@dataclass(frozen=True)
class PRCurve:
    """Precision/recall along the ranked detections of one class at one IoU threshold.

    scores, precision, recall: (N,) arrays, N = detections that count (ignored ones removed).
    """

    scores: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    num_gt: int


@dataclass(frozen=True)
class DetectionReport:
    """What ``DetectionMetrics.compute`` returns. Per-class arrays have shape (C,); NaN = no ground truth.

    ap: COCO AP averaged over the IoU thresholds (area all, most detections);
    ap50 / ap75: COCO 101-point AP at IoU 0.5 / 0.75 (NaN when that threshold is not evaluated);
    ap_lecture: the lecture's AP at the first IoU threshold;
    precision / recall / f1 / tp / fp / num_gt: at the first IoU threshold over all detections given;
    stats: (12,) COCO summary in COCO_STAT_NAMES order (-1 where undefined, as COCO does);
    curves: one PRCurve per class at the first IoU threshold.
    """

    ap: np.ndarray
    ap50: np.ndarray
    ap75: np.ndarray
    ap_lecture: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    num_gt: np.ndarray
    stats: np.ndarray
    curves: tuple[PRCurve, ...]
    num_images: int

    @property
    def map(self) -> float:
        """Mean of ``ap`` over classes with ground truth (COCO's AP when all thresholds are used)."""
        return _nanmean(self.ap)

    @property
    def map50(self) -> float:
        return _nanmean(self.ap50)

    def overall(self) -> dict[str, float]:
        """Micro-averaged P, R, F1 over all classes at the first IoU threshold."""
        tp, fp, n = float(self.tp.sum()), float(self.fp.sum()), float(self.num_gt.sum())
        p = tp / (tp + fp) if tp + fp else float("nan")
        r = tp / n if n else float("nan")
        f1 = 2 * p * r / (p + r) if (p + r) > 0 else (0.0 if tp + fp and n else float("nan"))
        return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "num_gt": n}

    def stats_dict(self) -> dict[str, float]:
        return dict(zip(COCO_STAT_NAMES, (float(v) for v in self.stats)))


def _nanmean(a: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    ok = ~np.isnan(a)
    return float(a[ok].mean()) if ok.any() else float("nan")


class DetectionMetrics:
    """Accumulates per-image matches; computes COCO and lecture metrics over what it holds.

    num_classes: class indices 0..C-1 are evaluated (others ignored);
    iou_thresholds: (T,) defaults to COCO's 0.5:0.95; area_ranges: name -> (lo, hi), must contain "all";
    max_dets: increasing per-image-per-class limits, the last one bounds what is kept;
    window: keep only the last ``window`` images (None = all); ``prune(before)`` drops by timestamp.
    """

    def __init__(self, num_classes: int, iou_thresholds: np.ndarray | tuple[float, ...] = COCO_IOU_THRESHOLDS,
                 area_ranges: dict[str, tuple[float, float]] | None = None,
                 max_dets: tuple[int, ...] = COCO_MAX_DETS, window: int | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.iou_thresholds = np.asarray(iou_thresholds, np.float64).reshape(-1)
        self.area_ranges = dict(COCO_AREA_RANGES if area_ranges is None else area_ranges)
        if "all" not in self.area_ranges:
            raise ValueError("area_ranges must contain 'all'")
        self._area_names = list(self.area_ranges)
        self._ranges = np.array([self.area_ranges[k] for k in self._area_names], np.float64)
        self.max_dets = tuple(int(m) for m in max_dets)
        self.window = window
        self._images: collections.deque[tuple[float, dict[int, ClassMatch]]] = collections.deque(
            maxlen=window)

    def reset(self) -> None:
        self._images.clear()

    def __len__(self) -> int:
        return len(self._images)

    def update(self, detections: Detections, truth: GroundTruth, timestamp: float = 0.0) -> None:
        """Match one image's detections against its ground truth and keep the result."""
        dt_xywh = xyxy_to_xywh(detections.boxes.astype(np.float64))
        gt_xywh = xyxy_to_xywh(truth.boxes.astype(np.float64))
        self.update_xywh(dt_xywh, detections.scores, detections.classes, gt_xywh, truth.classes,
                         truth.crowd, truth.ignore, truth.area, timestamp)

    def update_xywh(self, dt_xywh: np.ndarray, dt_scores: np.ndarray, dt_classes: np.ndarray,
                    gt_xywh: np.ndarray, gt_classes: np.ndarray, gt_crowd: np.ndarray,
                    gt_ignore: np.ndarray, gt_area: np.ndarray, timestamp: float = 0.0) -> None:
        """``update`` with COCO-style (x, y, w, h) boxes given as they are, so no rounding creeps in."""
        per_class: dict[int, ClassMatch] = {}
        dt_classes = np.asarray(dt_classes, np.int64)
        gt_classes = np.asarray(gt_classes, np.int64)
        for c in np.union1d(dt_classes, gt_classes).tolist():
            if not 0 <= c < self.num_classes:
                continue
            d = dt_classes == c
            g = gt_classes == c
            per_class[c] = match_class(dt_xywh[d], np.asarray(dt_scores)[d], gt_xywh[g],
                                       np.asarray(gt_crowd)[g], np.asarray(gt_ignore)[g],
                                       np.asarray(gt_area)[g], self.iou_thresholds, self._ranges,
                                       self.max_dets[-1])
        self._images.append((float(timestamp), per_class))

    def prune(self, before: float) -> None:
        """Drop images whose timestamp is older than ``before`` (time-based rolling window)."""
        while self._images and self._images[0][0] < before:
            self._images.popleft()

    # -- compute ---------------------------------------------------------------------------------
    def _gather(self, c: int, a: int, max_det: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        recs = [m[c] for _, m in self._images if c in m]
        n_t = len(self.iou_thresholds)
        if not recs:
            return np.zeros(0), np.zeros((n_t, 0), bool), np.zeros((n_t, 0), bool), 0
        scores = np.concatenate([r.scores[:max_det] for r in recs])
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate([r.matched[a, :, :max_det] for r in recs], axis=1)[:, order]
        ignored = np.concatenate([r.ignored[a, :, :max_det] for r in recs], axis=1)[:, order]
        num_gt = int(sum(int(r.num_gt[a]) for r in recs))
        return scores[order], matched, ignored, num_gt

    def compute(self) -> DetectionReport:
        n_t, n_c = len(self.iou_thresholds), self.num_classes
        n_a, n_m = len(self._area_names), len(self.max_dets)
        n_r = len(COCO_RECALL_THRESHOLDS)
        precision = -np.ones((n_t, n_r, n_c, n_a, n_m))
        recall = -np.ones((n_t, n_c, n_a, n_m))
        a_all, m_last = self._area_names.index("all"), n_m - 1
        ap_lecture = np.full(n_c, np.nan)
        op = np.zeros((3, n_c))  # tp, fp, num_gt at the first IoU threshold
        curves: list[PRCurve] = []
        for c in range(n_c):
            curve = PRCurve(np.zeros(0), np.zeros(0), np.zeros(0), 0)
            for a in range(n_a):
                for mi, max_det in enumerate(self.max_dets):
                    scores, matched, ignored, num_gt = self._gather(c, a, max_det)
                    if num_gt == 0:
                        if a == a_all and mi == m_last:
                            op[1, c] = np.count_nonzero(~matched[0] & ~ignored[0]) if n_t else 0
                        continue
                    tps = matched & ~ignored
                    fps = ~matched & ~ignored
                    tp_sum = np.cumsum(tps, axis=1).astype(np.float64)
                    fp_sum = np.cumsum(fps, axis=1).astype(np.float64)
                    for t in range(n_t):
                        tp, fp = tp_sum[t], fp_sum[t]
                        rc = tp / num_gt
                        pr = tp / (fp + tp + _EPS)
                        recall[t, c, a, mi] = rc[-1] if len(tp) else 0.0
                        pr_env = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
                        idx = np.searchsorted(rc, COCO_RECALL_THRESHOLDS, side="left")
                        q = np.zeros(n_r)
                        ok = idx < len(pr_env)
                        q[ok] = pr_env[idx[ok]]
                        precision[t, :, c, a, mi] = q
                    if a == a_all and mi == m_last:
                        keep = ~ignored[0]
                        ap_lecture[c] = lecture_ap(matched[0][keep], num_gt)
                        op[:3, c] = (np.count_nonzero(tps[0]), np.count_nonzero(fps[0]), num_gt)
                        ctp, cfp = tp_sum[0][keep], fp_sum[0][keep]
                        curve = PRCurve(scores[keep], ctp / np.maximum(ctp + cfp, 1), ctp / num_gt, num_gt)
            curves.append(curve)
        return self._report(precision, recall, ap_lecture, op, tuple(curves), a_all, m_last)

    def _report(self, precision: np.ndarray, recall: np.ndarray, ap_lecture: np.ndarray, op: np.ndarray,
                curves: tuple[PRCurve, ...], a_all: int, m_last: int) -> DetectionReport:
        def mean_valid(s: np.ndarray) -> float:
            v = s[s > -1]
            return float(v.mean()) if v.size else -1.0

        def per_class_ap(t_sel: np.ndarray | slice) -> np.ndarray:
            s = precision[t_sel, :, :, a_all, m_last]  # (T', R, C)
            out = np.full(self.num_classes, np.nan)
            for c in range(self.num_classes):
                v = s[..., c]
                if (v > -1).any():
                    out[c] = v[v > -1].mean()
            return out

        def at(iou: float) -> np.ndarray:
            t = np.where(np.isclose(self.iou_thresholds, iou, atol=1e-12))[0]
            return per_class_ap(t) if t.size else np.full(self.num_classes, np.nan)

        def ap_stat(iou: float | None, area: str, max_det: int) -> float:
            if area not in self.area_ranges or max_det not in self.max_dets:
                return -1.0
            a, m = self._area_names.index(area), self.max_dets.index(max_det)
            s = precision[..., a, m]
            if iou is not None:
                t = np.where(np.isclose(self.iou_thresholds, iou, atol=1e-12))[0]
                if not t.size:
                    return -1.0
                s = s[t]
            return mean_valid(s)

        def ar_stat(area: str, max_det: int) -> float:
            if area not in self.area_ranges or max_det not in self.max_dets:
                return -1.0
            return mean_valid(recall[:, :, self._area_names.index(area), self.max_dets.index(max_det)])

        top = self.max_dets[-1]
        stats = np.array([
            ap_stat(None, "all", top), ap_stat(0.5, "all", top), ap_stat(0.75, "all", top),
            ap_stat(None, "small", top), ap_stat(None, "medium", top), ap_stat(None, "large", top),
            ar_stat("all", 1), ar_stat("all", 10), ar_stat("all", top),
            ar_stat("small", top), ar_stat("medium", top), ar_stat("large", top),
        ])
        tp, fp, num_gt = op[0], op[1], op[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
            r = np.where(num_gt > 0, tp / num_gt, np.nan)
            f1 = np.where((p + r) > 0, 2 * p * r / (p + r), np.where(np.isnan(p + r), np.nan, 0.0))
        return DetectionReport(
            ap=per_class_ap(slice(None)), ap50=at(0.5), ap75=at(0.75), ap_lecture=ap_lecture,
            precision=p, recall=r, f1=f1, tp=tp.astype(np.int64), fp=fp.astype(np.int64),
            num_gt=num_gt.astype(np.int64), stats=stats, curves=curves, num_images=len(self._images))
