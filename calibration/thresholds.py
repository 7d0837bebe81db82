"""Operating thresholds from data: per class, the score threshold that maximises F1 (default), or the
lowest that meets a precision floor, or the highest that keeps a recall floor; and the NMS IoU threshold
from a small sweep. Written atomically to the thresholds file the runtime loads (and reloads on SIGHUP).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge_app.core.artifact import write_atomic
from edge_app.core.detection_metrics import PRCurve
from edge_app.core.operating_point import DETECTOR, exact_threshold
from edge_app.decoders import DetectionDecoder

from .evaluate import EVAL_SCORE_THRESHOLD, DetectionRun

CRITERIA = ("f1", "precision", "recall")
NMS_SWEEP = (0.3, 0.4, 0.45, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class Choice:
    threshold: float
    precision: float
    recall: float
    f1: float


def pick_threshold(curve: PRCurve, criterion: str = "f1", floor: float = 0.9,
                   default: float = DETECTOR.score_threshold) -> Choice:
    """The operating point on one class's PR curve (ranked detections, decreasing score).

    f1: maximise F1 (ties: the higher threshold); precision: the lowest threshold whose precision is
    still >= floor (most recall at that precision); recall: the highest threshold whose recall >= floor.
    A point between two equal scores cannot be chosen: a threshold keeps every detection with that score.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}: expected one of {CRITERIA}")
    s, p, r = np.asarray(curve.scores), np.asarray(curve.precision), np.asarray(curve.recall)
    if s.size == 0:
        return Choice(default, float("nan"), float("nan"), float("nan"))
    # Only the last detection of each run of equal scores is a reachable operating point.
    last = np.r_[s[1:] != s[:-1], True]
    s, p, r = s[last], p[last], r[last]
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    if criterion == "f1":
        i = int(np.flatnonzero(f1 == f1.max())[0])  # first = highest threshold among the best
    elif criterion == "precision":
        ok = np.flatnonzero(p >= floor)
        i = int(ok[-1]) if ok.size else int(np.argmax(p))
    else:
        ok = np.flatnonzero(r >= floor)
        i = int(ok[0]) if ok.size else len(s) - 1
    return Choice(float(s[i]), float(p[i]), float(r[i]), float(f1[i]))


def choose_thresholds(curves: Sequence[PRCurve], classes: tuple[str, ...], judged: np.ndarray, criterion: str,
                      floor: float) -> dict[str, Choice]:
    """{class: Choice} for the classes the labels can judge (``judged`` (C,) bool: the dataset names them)
    and show (at least one label and one detection). The others are left out: labels that never show a
    class say nothing about its threshold (the MOT frames' unlabelled cars), so it keeps the model's
    configured score_threshold rather than a value that looks calibrated and is not."""
    return {c: pick_threshold(curves[i], criterion, floor) for i, c in enumerate(classes)
            if judged[i] and curves[i].num_gt > 0 and len(curves[i].scores) > 0}


def previous_thresholds(path: Path, onnx_sha256: str, classes: tuple[str, ...]) -> dict[str, float]:
    """{class: threshold} an earlier calibration of this same model (same ONNX digest) wrote to ``path``:
    what classes the new labels do not judge keep, so labelling cars does not undo the people's threshold.
    {} when there is no such file, it is unreadable, or it was chosen for another version of the model."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("onnx_sha256") != onnx_sha256:
            return {}
        return {str(c): exact_threshold(float(v)) for c, v in dict(data["score_thresholds"]).items()
                if c in classes and 0.0 <= float(v) <= 1.0}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def operating_point(model: Any, run: DetectionRun, criterion: str, floor: float, top_k: int, max_detections: int,
                    default: float = DETECTOR.score_threshold, kept: dict[str, float] | None = None
                    ) -> tuple[dict[str, Choice], float, Any, list[dict[str, Any]]]:
    """Thresholds per class and the NMS IoU, chosen together, and the report of the runtime's own decode
    at that point. For each IoU of the sweep the network outputs are decoded again at the evaluation
    threshold (complete PR curves), thresholds are picked on those curves (``choose_thresholds``; the
    classes left out run at their ``kept`` earlier threshold, else at ``default``, as the runtime will run
    them), then decoded as the runtime
    will (its thresholds, top-k and detection cap): the F1 of that decode chooses the IoU.
    Returns (choices, nms_iou, live report at IoU 0.5, sweep rows)."""
    sweep, candidates = [], []
    kept = kept or {}
    groups = model.decoder.class_groups
    for iou in NMS_SWEEP:  # re-decode the kept network outputs: no second pass through the model
        full = run.redecoded(DetectionDecoder(model.meta, score_threshold=EVAL_SCORE_THRESHOLD, iou_threshold=iou,
                                              top_k=max(top_k, 1000), max_detections=max_detections,
                                              class_groups=groups))
        chosen = choose_thresholds(full.report(iou_thresholds=(0.5,)).curves, model.classes, run.judged,
                                   criterion, floor)
        thr = np.array([exact_threshold(chosen[c].threshold if c in chosen else kept.get(c, default)) for c in model.classes],
                       np.float32)
        live = run.redecoded(DetectionDecoder(model.meta, score_threshold=thr, iou_threshold=iou, top_k=top_k,
                                              max_detections=max_detections, class_groups=groups)).report(
            iou_thresholds=(0.5,))
        o = live.overall()
        sweep.append({"nms_iou": iou, "f1": o["f1"], "precision": o["precision"], "recall": o["recall"]})
        candidates.append((chosen, live))
    best = max(range(len(sweep)),
               key=lambda i: (np.nan_to_num(sweep[i]["f1"]), -abs(sweep[i]["nms_iou"] - DETECTOR.nms_iou)))
    chosen, live = candidates[best]
    return chosen, float(sweep[best]["nms_iou"]), live, sweep


def write_thresholds(path: Path, model: str, onnx_sha256: str, classes: tuple[str, ...],
                     choices: dict[str, Choice], nms_iou: float, criterion: str, expected: dict[str, Any],
                     extra: dict[str, Any], kept: dict[str, float] | None = None) -> Path:
    """The runtime's thresholds file. Thresholds are the chosen float32 scores exactly (the runtime keeps
    ``score >= threshold``); a class without a choice is not named, so the runtime keeps its configured
    score_threshold for it (``kept``: an earlier calibration's threshold for a class these labels do not
    judge, written again); ``expected`` is what the runtime's own decode gives at this operating point
    on the calibration images (per class P/R/F1, tp, fp, labels), so a live replay of those images
    reproduces it to the last detection."""
    data = {"model": model, "onnx_sha256": onnx_sha256, "criterion": criterion, "nms_iou": nms_iou,
            "rule": "score >= threshold",
            "score_thresholds": {c: exact_threshold(choices[c].threshold) if c in choices else (kept or {})[c]
                                 for c in classes if c in choices or c in (kept or {})},
            "expected": expected, **extra}
    write_atomic(Path(path), json.dumps(data, indent=1, default=_json_default) + "\n")
    return Path(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
