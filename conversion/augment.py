"""Label-consistent augmentations in numpy (no torch): boxes and masks follow every geometric change.

SSD-style: photometric distortion, zoom out (expand onto a mean-filled canvas), random IoU crop
(a crop must overlap some object with IoU >= one of 0.1/0.3/0.5/0.7/0.9; boxes whose centre leaves the
crop are dropped), horizontal flip. Masks are moved with nearest neighbour, never interpolated.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_app.core.boxes import iou_matrix


@dataclass
class Item:
    """image (H, W, 3) uint8 BGR; boxes (N, 4) xyxy float32; classes (N,) int64; mask (H, W) or None."""

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    mask: np.ndarray | None = None


def photometric(item: Item, rng: np.random.Generator) -> Item:
    """Random brightness, contrast, saturation and hue (each with probability 1/2)."""
    img = item.image.astype(np.float32)
    if rng.random() < 0.5:
        img += rng.uniform(-32, 32)
    if rng.random() < 0.5:
        img *= rng.uniform(0.5, 1.5)
    out: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
    sat, hue = rng.random() < 0.5, rng.random() < 0.5
    if sat or hue:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(np.float32)
        if sat:
            hsv[..., 1] *= rng.uniform(0.5, 1.5)
        if hue:
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-9, 9)) % 180
        out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    return Item(out, item.boxes, item.classes, item.mask)


def hflip(item: Item, rng: np.random.Generator, p: float = 0.5) -> Item:
    if rng.random() >= p:
        return item
    w = item.image.shape[1]
    boxes = item.boxes.copy()
    boxes[:, [0, 2]] = w - item.boxes[:, [2, 0]]
    mask = None if item.mask is None else item.mask[:, ::-1].copy()
    return Item(item.image[:, ::-1].copy(), boxes, item.classes, mask)


def zoom_out(item: Item, rng: np.random.Generator, max_ratio: float = 2.0, p: float = 0.5,
             ignore_value: int = 0) -> Item:
    """Place the image on a larger mean-coloured canvas (SSD's "expand"): objects get smaller."""
    if rng.random() >= p:
        return item
    h, w = item.image.shape[:2]
    r = rng.uniform(1.0, max_ratio)
    nh, nw = int(h * r), int(w * r)
    top, left = int(rng.uniform(0, nh - h)), int(rng.uniform(0, nw - w))
    canvas = np.empty((nh, nw, 3), np.uint8)
    canvas[:] = item.image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    canvas[top:top + h, left:left + w] = item.image
    mask = None
    if item.mask is not None:
        mask = np.full((nh, nw), ignore_value, item.mask.dtype)
        mask[top:top + h, left:left + w] = item.mask
    return Item(canvas, item.boxes + np.array([left, top, left, top], np.float32), item.classes, mask)


def iou_crop(item: Item, rng: np.random.Generator, trials: int = 40) -> Item:
    """SSD's random crop: keep the whole image, or a crop overlapping some box with IoU >= a minimum."""
    h, w = item.image.shape[:2]
    choices = (None, 0.1, 0.3, 0.5, 0.7, 0.9, 0.0)
    while True:
        min_iou = choices[int(rng.integers(0, len(choices)))]
        if min_iou is None or len(item.boxes) == 0:
            return item
        for _ in range(trials):
            cw, ch = rng.uniform(0.3, 1.0) * w, rng.uniform(0.3, 1.0) * h
            if not 0.5 <= (cw / ch) / (w / h) <= 2.0:
                continue
            x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
            crop = np.array([[x0, y0, x0 + cw, y0 + ch]], np.float32)
            if iou_matrix(crop, item.boxes).max() < min_iou:
                continue
            centres = (item.boxes[:, :2] + item.boxes[:, 2:]) / 2
            inside = ((centres[:, 0] > crop[0, 0]) & (centres[:, 0] < crop[0, 2])
                      & (centres[:, 1] > crop[0, 1]) & (centres[:, 1] < crop[0, 3]))
            if not inside.any():
                continue
            xi0, yi0, xi1, yi1 = (int(v) for v in np.round(crop[0]))
            boxes = item.boxes[inside].copy()
            boxes[:, 0::2] = np.clip(boxes[:, 0::2], xi0, xi1) - xi0
            boxes[:, 1::2] = np.clip(boxes[:, 1::2], yi0, yi1) - yi0
            mask = None if item.mask is None else item.mask[yi0:yi1, xi0:xi1].copy()
            return Item(item.image[yi0:yi1, xi0:xi1].copy(), boxes, item.classes[inside], mask)


def scale_crop(item: Item, rng: np.random.Generator, out_size: tuple[int, int],
               scale: tuple[float, float] = (0.5, 2.0)) -> Item:
    """Random rescale then a random crop/pad to out_size (h, w): the segmentation recipe."""
    s = rng.uniform(*scale)
    h, w = item.image.shape[:2]
    nh, nw = max(1, int(h * s)), max(1, int(w * s))
    image = cv2.resize(item.image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    mask = None if item.mask is None else cv2.resize(item.mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
    oh, ow = out_size
    top = int(rng.integers(0, max(nh - oh, 0) + 1))
    left = int(rng.integers(0, max(nw - ow, 0) + 1))
    image = image[top:top + oh, left:left + ow]
    boxes = item.boxes * s - np.array([left, top, left, top], np.float32)
    if mask is not None:
        mask = mask[top:top + oh, left:left + ow]
    return Item(image, boxes, item.classes, mask)


def detection_train(item: Item, rng: np.random.Generator) -> Item:
    """The SSD training recipe: photometric, zoom out (at most 2x: SSDLite's smallest default box is
    64 px at 320, and smaller objects would have no anchor to learn from), IoU crop, flip."""
    return hflip(iou_crop(zoom_out(photometric(item, rng), rng), rng), rng)
