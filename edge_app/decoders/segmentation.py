"""Segmentation logits (1, C, h, w) -> SegMask at frame resolution (argmax, nearest-neighbour resize)."""
from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from ..core.artifact import ArtifactMeta
from ..frames.preprocess import Letterbox
from ..core.types import SegMask


def class_map(logits: np.ndarray) -> np.ndarray:
    """(C, h, w) logits -> (h, w) uint8 class index (argmax is the same for softmax and sigmoid)."""
    return np.argmax(logits, axis=0).astype(np.uint8)


def confidence(logits: np.ndarray, score: str) -> np.ndarray:
    """(C, h, w) logits -> (h, w) float32 probability of the chosen class."""
    top = logits.max(axis=0)
    if score == "sigmoid":
        return (1.0 / (1.0 + np.exp(-top))).astype(np.float32)
    # softmax of the top class without forming all probabilities twice
    return (1.0 / np.exp(logits - top[None]).sum(axis=0)).astype(np.float32)


class SegmentationDecoder:
    def __init__(self, meta: ArtifactMeta, *, with_confidence: bool = False) -> None:
        self.meta = meta
        self.logits_name = meta.outputs.get("logits", "logits")
        self.with_confidence = with_confidence

    def __call__(self, outputs: Mapping[str, np.ndarray], geo: Letterbox) -> SegMask:
        logits = np.asarray(outputs[self.logits_name])[0]
        if logits.shape[0] != self.meta.num_classes:
            raise ValueError(f"logits have {logits.shape[0]} channels, metadata names {self.meta.num_classes}")
        labels = geo.map_to_frame(class_map(logits), cv2.INTER_NEAREST)
        scores = None
        if self.with_confidence:
            scores = geo.map_to_frame(confidence(logits, self.meta.score), cv2.INTER_LINEAR)
        return SegMask(labels, scores)
