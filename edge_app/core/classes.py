"""Class names are the identity of a class; indices are positions in one list. Every place that moves
labels between two lists of names (a dataset and a model, training and validation data, a label file and
the live window) uses these functions, so ids never shift silently.

The rule for scoring a model against labels: objects of classes the model does not have are dropped
(nothing could match them); a detection is judged only when its class is one the labels cover (a label set
covers the classes it names, or every class when it is exhaustive, as a person's per-frame label is).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .types import Detections, GroundTruth


def index_map(source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """(len(source),) int64: position in ``target`` of each source name, -1 where target lacks it."""
    where = {n: i for i, n in enumerate(target)}
    return np.array([where.get(n, -1) for n in source], np.int64).reshape(-1)


def remap_truth(truth: GroundTruth, source: Sequence[str], target: Sequence[str]) -> tuple[GroundTruth, int]:
    """Ground truth whose class ids index ``source`` re-indexed to ``target`` by name.

    Returns (truth, dropped): objects of classes ``target`` lacks (or with ids outside ``source``) dropped.
    """
    ids = truth.classes
    lut = index_map(source, target)
    valid = (ids >= 0) & (ids < len(lut))
    mapped = np.full(len(ids), -1, np.int64)
    mapped[valid] = lut[ids[valid]]
    keep = mapped >= 0
    out = GroundTruth(truth.boxes[keep], mapped[keep], truth.crowd[keep], truth.ignore[keep], truth.area[keep])
    return out, int((~keep).sum())


def judged_classes(label_classes: Sequence[str], model_classes: Sequence[str], exhaustive: bool = False) -> np.ndarray:
    """(C,) bool over the model's classes: which of its detections the labels can judge."""
    if exhaustive:
        return np.ones(len(model_classes), bool)
    named = set(label_classes)
    return np.array([c in named for c in model_classes], bool).reshape(-1)


def align(det: Detections, truth: GroundTruth, label_classes: Sequence[str], model_classes: Sequence[str],
          exhaustive: bool = False) -> tuple[Detections, GroundTruth, np.ndarray]:
    """One image's detections and labels made comparable: (detections judged, truth in model ids, judged (C,))."""
    judged = judged_classes(label_classes, model_classes, exhaustive)
    mapped, _ = remap_truth(truth, label_classes, model_classes)
    if len(det):
        det = det.select(judged[det.classes])
    return det, mapped, judged


IGNORE = 255  # the ignore value of every aligned mask


def mask_lut(label_classes: Sequence[str], model_classes: Sequence[str], ignore_index: int | None = None) -> np.ndarray:
    """(256,) uint8 lookup from a label mask's class indices to the model's (``IGNORE`` = not scored).

    By name where the names meet beyond the background; a two-class model against a multi-class mask
    scores any labelled object as its foreground; where no name meets (a mask folder without a classes
    file), indices are taken as the model's own. Indices the model lacks and ``ignore_index`` are ignored.
    """
    lut = np.full(256, IGNORE, np.uint8)
    n = len(model_classes)
    named = {i: int(j) for i, j in enumerate(index_map(label_classes, model_classes)) if j >= 0 and i < 256}
    if n == 2 and not (set(named.values()) - {0}) and len(label_classes) > 2:
        named = {i: int(i != 0) for i in range(min(len(label_classes), 256))}
    elif not (set(named.values()) - {0}):
        named = {i: i for i in range(min(n, 256))}
    for i, j in named.items():
        lut[i] = j
    if ignore_index is not None and 0 <= ignore_index < 256:
        lut[ignore_index] = IGNORE
    return lut
