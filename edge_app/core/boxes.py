"""Box conversions and vectorised IoU.

Formats: ``xyxy`` (x1, y1, x2, y2), ``xywh`` (COCO: x, y, width, height), ``cxcywh`` (centre, size).
All functions take (N, 4) arrays and keep the dtype of floating inputs.
"""
from __future__ import annotations

import numpy as np


def _float(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes)
    if not np.issubdtype(b.dtype, np.floating):
        b = b.astype(np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        if b.size == 0:
            return b.reshape(0, 4)
        raise ValueError(f"expected boxes of shape (N, 4), got {b.shape}")
    return b


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) xywh."""
    b = _float(boxes)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xywh -> (N, 4) xyxy."""
    b = _float(boxes)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) centre x, centre y, width, height."""
    b = _float(boxes)
    wh = b[:, 2:] - b[:, :2]
    return np.concatenate([b[:, :2] + wh / 2, wh], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, width, height -> (N, 4) xyxy."""
    b = _float(boxes)
    half = b[:, 2:] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N,) area; degenerate boxes give 0, never a negative area."""
    b = _float(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip (N, 4) xyxy boxes to the image [0, width] x [0, height]."""
    b = _float(boxes).copy()
    np.clip(b[:, 0::2], 0, width, out=b[:, 0::2])
    np.clip(b[:, 1::2], 0, height, out=b[:, 1::2])
    return b


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair: (N, 4) xyxy, (M, 4) xyxy -> (N, M) float64.

    Pairs whose union is empty (two degenerate boxes) get IoU 0.
    """
    a64 = _float(a).astype(np.float64, copy=False)
    b64 = _float(b).astype(np.float64, copy=False)
    lt = np.maximum(a64[:, None, :2], b64[None, :, :2])
    rb = np.minimum(a64[:, None, 2:], b64[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a64)[:, None] + box_area(b64)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def coco_iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU as the COCO API computes it for boxes: (D, 4) xywh, (G, 4) xywh, (G,) bool -> (D, G).

    For a crowd ground truth the union is the detection's own area (a detection inside a crowd region
    matches it fully). Computed in float64 from xywh, in the same order as COCO's ``bbIou``, so that
    matching decisions at a threshold agree exactly.
    """
    d = np.asarray(dt, np.float64).reshape(-1, 4)
    g = np.asarray(gt, np.float64).reshape(-1, 4)
    crowd = np.asarray(crowd, bool).reshape(-1)
    w = (np.minimum(d[:, None, 0] + d[:, None, 2], g[None, :, 0] + g[None, :, 2])
         - np.maximum(d[:, None, 0], g[None, :, 0]))
    h = (np.minimum(d[:, None, 1] + d[:, None, 3], g[None, :, 1] + g[None, :, 3])
         - np.maximum(d[:, None, 1], g[None, :, 1]))
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    da = (d[:, 2] * d[:, 3])[:, None]
    ga = (g[:, 2] * g[:, 3])[None, :]
    union = np.where(crowd[None, :], da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)
