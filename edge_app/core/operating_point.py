"""The detector's operating point, defined once: defaults, the score rule, thresholds that survive JSON.

The rule: a detection is kept when ``score >= threshold`` of its class. Calibration picks a detection's
own score as a class threshold (the last detection it wants to keep), so the boundary must keep equal
scores, and the value written to the thresholds file must be that float32 score exactly: the runtime,
calibration's evaluation and the rolling window then agree on every detection.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DetectorDefaults:
    """What a detector runs with when nothing else is said (config keys, ModelSpec, decoder)."""

    score_threshold: float = 0.4
    nms_iou: float = 0.45
    top_k: int = 400
    max_detections: int = 100


DETECTOR = DetectorDefaults()
# Offline evaluation decodes at a low threshold so PR curves are complete (training's validation,
# calibration, the INT8 gate); thresholds are then chosen on those curves.
EVALUATION = DetectorDefaults(score_threshold=0.01, nms_iou=0.5, top_k=1000, max_detections=100)


def keep_mask(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) scores against thresholds broadcast to them -> bool mask: ``score >= threshold``.

    Compared in float32 (the networks' score type), so a threshold read back from JSON compares exactly as
    the score it was chosen from.
    """
    return np.asarray(scores, np.float32) >= np.asarray(thresholds, np.float32)


def exact_threshold(value: float) -> float:
    """A threshold as the float whose float32 is the chosen score itself (no rounding: ``round(x, 6)``
    can land above the score and drop the very detection the threshold was chosen to keep)."""
    return float(np.float32(value))
