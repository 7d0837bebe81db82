"""Drawing results on frames: boxes with class and score, alpha-blended masks, and a HUD.

Deterministic for given inputs (golden-image tests), and drawn in place on a copy of the frame.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..core.types import Detections, SegMask, Tracks

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def palette(n: int, seed: int = 7) -> np.ndarray:
    """(n, 3) uint8 BGR colours, well separated in hue, stable for a given n."""
    hues = (np.arange(n) * 180 / max(n, 1) + seed * 11) % 180
    hsv = np.stack([hues, np.full(n, 220), np.full(n, 255)], axis=1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]


def draw_mask(image: np.ndarray, mask: SegMask, classes: Sequence[str], alpha: float = 0.45,
              skip: Sequence[int] = (0,)) -> np.ndarray:
    """Blend class colours into ``image`` (H, W, 3) uint8 in place where the class of ``mask`` (H, W)
    is not in ``skip`` (background)."""
    labels = mask.labels
    if labels.shape != image.shape[:2]:
        raise ValueError(f"mask {labels.shape} does not match frame {image.shape[:2]}")
    top = int(labels.max(initial=0))
    colours = palette(max(len(classes), top + 1))
    if top < 256 and int(labels.min(initial=0)) >= 0:
        # Table lookups on uint8 labels: ~10x faster than fancy indexing and isin on a live frame.
        idx = labels.astype(np.uint8, copy=False)
        lut = np.zeros((256, 1, 3), np.uint8)
        lut[:len(colours), 0] = colours
        colour_img = cv2.LUT(cv2.merge([idx, idx, idx]), lut)
        visible = np.ones(256, np.uint8)
        visible[[k for k in skip if 0 <= k < 256]] = 0
        show = cv2.LUT(idx, visible)
    else:
        colour_img = colours[np.clip(labels, 0, len(colours) - 1)]
        show = (~np.isin(labels, np.asarray(skip))).astype(np.uint8)
    if cv2.countNonZero(show):
        blended = cv2.addWeighted(image, 1.0 - alpha, colour_img, alpha, 0.0)
        cv2.copyTo(blended, show, image)  # only where a (non-background) class is
    return image


Rect = tuple[int, int, int, int]  # x, y, width, height


def _overlap(a: Rect, b: Rect) -> int:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def label_layout(boxes: np.ndarray, sizes: Sequence[tuple[int, int]], width: int, height: int) -> list[Rect]:
    """Where each box's label goes: (x, y, w, h) rectangles, one per box, inside the image and not over
    an earlier label where any place allows (earlier = drawn first: callers pass boxes best score first).

    Candidates, in order: above the box's top-left corner, just inside it, below it, inside its bottom,
    further down inside it, then the same on the right edge; the first free one wins, else the one
    overlapping placed labels least.
    """
    placed: list[Rect] = []
    for box, (lw, lh) in zip(np.asarray(boxes, np.float64).reshape(-1, 4), sizes):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cands = []
        for x in (x1, x2 - lw):
            inner = [y1 + k * lh for k in range(1, max(1, (y2 - y1) // max(lh, 1)))]
            for y in (y1 - lh, y1, y2, y2 - lh, *inner):
                cands.append((min(max(0, x), max(0, width - lw)), min(max(0, y), max(0, height - lh)), lw, lh))
        best = min(cands, key=lambda r: (sum(_overlap(r, p) for p in placed), cands.index(r)))
        placed.append(best)
    return placed


def text_scale(image: np.ndarray) -> tuple[float, int]:
    """(font scale, thickness) for labels on this frame: sized to the frame (0.5 at 720 lines, 0.75 at
    1080), never under 0.35 (a 360-line frame shown twice as large in the page stays readable without
    its labels covering the neighbours' boxes)."""
    scale = max(0.35, 0.5 * image.shape[0] / 720)
    return scale, 1 if scale < 0.9 else 2


def _boxes_with_labels(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, texts: Sequence[str],
                       colours: Sequence[tuple[int, ...]], thickness: int) -> np.ndarray:
    """Boxes, then their labels laid out best score first (``label_layout``) and drawn after every box, so
    overlapping boxes keep readable labels and no edge crosses a label (in place)."""
    h, w = image.shape[:2]
    scale, weight = text_scale(image)
    order = np.argsort(-np.asarray(scores), kind="stable")
    sizes, heights = [], []
    for i in order:
        x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[i])
        cv2.rectangle(image, (x1, y1), (x2, y2), colours[i], thickness, cv2.LINE_8)
        (tw, th), base = cv2.getTextSize(texts[i], _FONT, scale, weight)
        sizes.append((tw + 2, th + base + 2))
        heights.append(th)
    for i, th, (x, y, lw, lh) in zip(order, heights, label_layout(np.asarray(boxes)[order], sizes, w, h)):
        cv2.rectangle(image, (x, y), (x + lw - 1, y + lh - 1), colours[i], -1)
        cv2.putText(image, texts[i], (x + 1, y + th + 1), _FONT, scale, (0, 0, 0), weight, cv2.LINE_AA)
    return image


def _name(classes: Sequence[str], cls: int) -> str:
    return classes[cls] if 0 <= cls < len(classes) else str(cls)


def draw_detections(image: np.ndarray, det: Detections, classes: Sequence[str],
                    thickness: int = 2) -> np.ndarray:
    """Boxes and 'name 0.87' labels, one colour per class (in place)."""
    palette_ = palette(max(len(classes), 1), seed=3)
    cls = det.classes.tolist()
    colours = [tuple(int(v) for v in palette_[c % len(palette_)]) for c in cls]
    texts = [f"{_name(classes, c)} {float(s):.2f}" for c, s in zip(cls, det.scores)]
    return _boxes_with_labels(image, det.boxes, det.scores, texts, colours, thickness)


def draw_plain_boxes(image: np.ndarray, boxes: np.ndarray, colour: tuple[int, int, int] = (160, 160, 160)) -> np.ndarray:
    """Thin unlabelled boxes (a tracked detector's detections that no confirmed track owns yet)."""
    for box in np.asarray(boxes).reshape(-1, 4):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1, cv2.LINE_8)
    return image


def draw_tracks(image: np.ndarray, tracks: Tracks, classes: Sequence[str],
                trails: dict[int, np.ndarray] | None = None, thickness: int = 2) -> np.ndarray:
    """Confirmed tracks: a short trail of the anchor, the box and '#12 person 0.87', one colour per
    identity (in place); labels laid out as draw_detections does."""
    palette_ = palette(64, seed=5)
    for tid, pts in (trails or {}).items():
        if len(pts) > 1:
            colour = tuple(int(c) for c in palette_[tid % 64])
            cv2.polylines(image, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)
    ids, cls = tracks.ids.tolist(), tracks.classes.tolist()
    colours = [tuple(int(v) for v in palette_[t % 64]) for t in ids]
    texts = [f"#{t} {_name(classes, c)} {float(s):.2f}" for t, c, s in zip(ids, cls, tracks.scores)]
    return _boxes_with_labels(image, tracks.boxes, tracks.scores, texts, colours, thickness)


def draw_geometry(image: np.ndarray, geometry: dict) -> np.ndarray:
    """Counting lines (with an arrow toward "in" and their in/out counts) and zones (outline and
    occupancy), in place. geometry: ``Analytics.geometry()``."""
    scale, weight = text_scale(image)
    for name, a, b, n_in, n_out in geometry.get("lines", []):
        p, q = tuple(int(v) for v in np.round(a)), tuple(int(v) for v in np.round(b))
        cv2.line(image, p, q, (0, 255, 255), 2, cv2.LINE_AA)
        mid = (np.asarray(a) + np.asarray(b)) / 2
        d = np.asarray(b, float) - np.asarray(a, float)
        normal = np.array([d[1], -d[0]]) / max(np.hypot(*d), 1e-6)  # toward the "in" side (left of A->B)
        tip = mid + 18 * normal
        cv2.arrowedLine(image, tuple(int(v) for v in mid), tuple(int(v) for v in tip), (0, 255, 255), 2,
                        cv2.LINE_AA, tipLength=0.4)
        text = f"{name} in {n_in} out {n_out}"
        org = (int(min(max(mid[0] + 6, 0), image.shape[1] - 8 * len(text))), int(max(mid[1] - 8, 14)))
        cv2.putText(image, text, org, _FONT, scale, (0, 0, 0), weight + 2, cv2.LINE_AA)
        cv2.putText(image, text, org, _FONT, scale, (0, 255, 255), weight, cv2.LINE_AA)
    for name, poly, occupancy in geometry.get("zones", []):
        pts = np.round(poly).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [pts], True, (255, 200, 0), 2, cv2.LINE_AA)
        x, y = int(poly[:, 0].min()) + 4, int(poly[:, 1].min()) + 16
        text = f"{name}: {occupancy}"
        cv2.putText(image, text, (x, y), _FONT, scale, (0, 0, 0), weight + 2, cv2.LINE_AA)
        cv2.putText(image, text, (x, y), _FONT, scale, (255, 200, 0), weight, cv2.LINE_AA)
    return image


def draw_hud(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """A translucent panel in the top-left corner with one text line each (in place)."""
    if not lines:
        return image
    scale, weight = text_scale(image)
    scale *= 0.9
    step = int(round(36 * scale)) + 2
    sizes = [cv2.getTextSize(t, _FONT, scale, weight)[0] for t in lines]
    width = min(image.shape[1], max(s[0] for s in sizes) + 12)
    height = min(image.shape[0], step * len(lines) + 8)
    panel = image[:height, :width]
    panel[:] = (panel.astype(np.uint16) * 2 // 5).astype(np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(image, text, (6, step * i + step - 1), _FONT, scale, (255, 255, 255), weight, cv2.LINE_AA)
    return image
