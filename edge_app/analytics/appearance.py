"""An appearance cue per box without a model: a colour histogram of the box's inner part (hue and
saturation, plus brightness for the colourless), L2-normalised, so two boxes compare by a dot product.
Cheap (a downscaled crop per box) and runtime-only (numpy + OpenCV); the tracker keeps a moving average
per track. Whether it pays is measured on/off (docs/tracking.md); it is off by default where it does not."""
from __future__ import annotations

import numpy as np


class ColourHistogram:
    """``embed(frame, boxes) -> (N, D)`` unit vectors, D = hue x saturation bins + brightness bins."""

    def __init__(self, hue_bins: int = 8, sat_bins: int = 4, val_bins: int = 4, crop: int = 32) -> None:
        import cv2
        self.cv2 = cv2
        self.hue_bins, self.sat_bins, self.val_bins, self.crop = hue_bins, sat_bins, val_bins, crop

    @property
    def dim(self) -> int:
        return self.hue_bins * self.sat_bins + self.val_bins

    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """frame (H, W, 3) BGR uint8, boxes (N, 4) xyxy pixels -> (N, D) float32."""
        cv2 = self.cv2
        h, w = frame.shape[:2]
        out = np.zeros((len(boxes), self.dim), np.float32)
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
            # the inner part: less background at the sides, no floor or neighbour's head
            bw, bh = x2 - x1, y2 - y1
            xa, xb = int(max(0, x1 + 0.2 * bw)), int(min(w, x2 - 0.2 * bw))
            ya, yb = int(max(0, y1 + 0.1 * bh)), int(min(h, y2 - 0.1 * bh))
            if xb - xa < 2 or yb - ya < 2:
                continue
            crop = cv2.resize(frame[ya:yb, xa:xb], (self.crop // 2, self.crop), interpolation=cv2.INTER_AREA)
            hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int64)
            coloured = hsv[:, 1] >= 40
            hs = (hsv[coloured, 0] * self.hue_bins // 180) * self.sat_bins + hsv[coloured, 1] * self.sat_bins // 256
            out[i, :self.hue_bins * self.sat_bins] = np.bincount(hs, minlength=self.hue_bins * self.sat_bins)
            out[i, self.hue_bins * self.sat_bins:] = np.bincount(hsv[~coloured, 2] * self.val_bins // 256,
                                                                minlength=self.val_bins)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norm, 1e-6)
