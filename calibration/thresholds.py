"""Operating thresholds from data: per class, the score threshold that maximises F1 (default), or the
lowest that meets a precision floor, or the highest that keeps a recall floor; and the NMS IoU threshold
from a small sweep. Written atomically to the thresholds file the runtime loads (and reloads on SIGHUP).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import write_atomic
from edge_app.core.detection_metrics import PRCurve
from edge_app.core.operating_point import exact_threshold

CRITERIA = ("f1", "precision", "recall")


@dataclass(frozen=True)
class Choice:
    threshold: float
    precision: float
    recall: float
    f1: float


def pick_threshold(curve: PRCurve, criterion: str = "f1", floor: float = 0.9, default: float = 0.5) -> Choice:
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


def write_thresholds(path: Path, model: str, onnx_sha256: str, classes: tuple[str, ...],
                     choices: dict[str, Choice], nms_iou: float, criterion: str, expected: dict[str, Any],
                     extra: dict[str, Any]) -> Path:
    """The runtime's thresholds file. Thresholds are the chosen float32 scores exactly (the runtime keeps
    ``score >= threshold``); ``expected`` is what the runtime's own decode gives at this operating point
    on the calibration images (per class P/R/F1, tp, fp, labels), so a live replay of those images
    reproduces it to the last detection."""
    data = {"model": model, "onnx_sha256": onnx_sha256, "criterion": criterion, "nms_iou": nms_iou,
            "rule": "score >= threshold",
            "score_thresholds": {c: exact_threshold(choices[c].threshold) for c in classes if c in choices},
            "expected": expected, **extra}
    write_atomic(Path(path), json.dumps(data, indent=1, default=_json_default) + "\n")
    return Path(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
