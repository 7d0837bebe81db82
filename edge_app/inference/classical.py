"""Classical segmenters (the lecture's baselines, and a fallback for devices without a trained model).

Each maps a BGR frame (H, W, 3) to an (H, W) uint8 class map with OpenCV alone:
  otsu      global threshold chosen by Otsu's method (class 1 = brighter than the threshold)
  adaptive  local mean threshold (handles uneven lighting)
  kmeans    k-means colour quantisation into len(classes) clusters, ordered by brightness
  canny     edges (class 1) vs the rest
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def _gray(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def otsu(frame: np.ndarray, num_classes: int = 2) -> np.ndarray:
    g = cv2.GaussianBlur(_gray(frame), (5, 5), 0)
    _, out = cv2.threshold(g, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return out.astype(np.uint8)


def adaptive(frame: np.ndarray, num_classes: int = 2) -> np.ndarray:
    g = _gray(frame)
    block = max(3, (min(g.shape) // 16) | 1)
    return cv2.adaptiveThreshold(g, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, -2).astype(np.uint8)


def canny(frame: np.ndarray, num_classes: int = 2) -> np.ndarray:
    g = cv2.GaussianBlur(_gray(frame), (5, 5), 0)
    median = float(np.median(g))
    edges = cv2.Canny(g, int(max(0, 0.66 * median)), int(min(255, 1.33 * median)))
    return (edges > 0).astype(np.uint8)


def kmeans(frame: np.ndarray, num_classes: int = 2, max_side: int = 160, seed: int = 0) -> np.ndarray:
    """Cluster colours on a downscaled copy (fast), then label every pixel by its nearest centre."""
    h, w = frame.shape[:2]
    s = min(1.0, max_side / max(h, w))
    small = cv2.resize(frame, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    data = small.reshape(-1, small.shape[-1] if small.ndim == 3 else 1).astype(np.float32)
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(data, num_classes, None, criteria, 2,  # type: ignore[call-overload]
                               cv2.KMEANS_PP_CENTERS)  # the stubs reject bestLabels=None, which OpenCV takes
    order = np.argsort(centres.sum(axis=1))  # deterministic class ids: darkest cluster = class 0
    rank = np.empty_like(order)
    rank[order] = np.arange(num_classes)
    full = frame.reshape(-1, data.shape[1]).astype(np.float32)
    d = ((full[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return rank[np.argmin(d, axis=1)].reshape(h, w).astype(np.uint8)


METHODS: dict[str, Callable[..., np.ndarray]] = {"otsu": otsu, "adaptive": adaptive, "kmeans": kmeans,
                                                  "canny": canny}


def segment(method: str, frame: np.ndarray, num_classes: int = 2) -> np.ndarray:
    if method not in METHODS:
        raise ValueError(f"unknown classical method {method!r}: expected one of {sorted(METHODS)}")
    return METHODS[method](frame, num_classes)
