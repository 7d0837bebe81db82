"""SSD default-box scales from the training boxes instead of the paper's 0.2..0.95 progression.

A box's scale is sqrt(w * h) relative to the image (w / width, h / height: the input is stretched, so
relative sizes survive the resize), the same unit as torchvision's DefaultBoxGenerator scales. The
``n_maps + 1`` scales are quantiles of that distribution from ``lo`` to ``hi`` (the generator uses scale k
for map k and sqrt(s_k * s_k+1) for the extra square box), so that the stride-8/16 maps get anchors as
small as the small objects really are (MOT17 pedestrians: median 0.06 of a 320-px input, where the
first default box is 0.2).
"""
from __future__ import annotations

import numpy as np


def box_scales(boxes_wh_rel: np.ndarray) -> np.ndarray:
    """(N, 2) relative widths and heights -> (N,) scales sqrt(w * h)."""
    wh = np.asarray(boxes_wh_rel, np.float64).reshape(-1, 2)
    return np.sqrt(np.clip(wh[:, 0], 0, None) * np.clip(wh[:, 1], 0, None))


def scales_from_boxes(boxes_wh_rel: np.ndarray, n_maps: int, lo: float = 0.05, hi: float = 0.98) -> list[float]:
    """``n_maps + 1`` increasing scales: quantiles ``lo..hi`` of the boxes' scales (strictly increasing by
    at least 2 % so each map has its own size)."""
    s = box_scales(boxes_wh_rel)
    s = s[s > 0]
    if len(s) < 2:
        raise ValueError(f"anchor scales from data need at least 2 boxes, got {len(s)}")
    q = np.quantile(s, np.linspace(lo, hi, n_maps + 1))
    out = [float(q[0])]
    for v in q[1:]:
        out.append(float(max(v, out[-1] * 1.02)))
    return [round(v, 4) for v in out]


def dataset_box_sizes(samples: list, fallback_size: tuple[int, int] | None = None) -> np.ndarray:
    """(N, 2) relative (w, h) of every non-ignored truth box of ``samples`` (edge_app Sample), using each
    sample's size as its label states it (else ``fallback_size`` (width, height), else the image read)."""
    from edge_app.datasets import load_image

    rows = []
    for s in samples:
        if s.truth is None or len(s.truth.boxes) == 0:
            continue
        if s.size is not None:
            w, h = s.size
        elif fallback_size is not None:
            w, h = fallback_size
        else:
            im = load_image(s.image_path)
            h, w = im.shape[:2]
        b = s.truth.boxes if s.truth.ignore is None else s.truth.boxes[~s.truth.ignore]
        rows.append(np.stack([(b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h], 1))
    return np.concatenate(rows) if rows else np.zeros((0, 2))
