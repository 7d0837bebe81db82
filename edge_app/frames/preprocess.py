"""The one preprocessing path: the runtime, the evaluator and the INT8 calibrator all call this.

frame (H, W, 3) uint8 BGR -> network input (1, 3, h, w) float32, as the artifact's metadata says
(size, colour order, mean/std on pixel/255, stretch or letterbox), plus the mapping back to the frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.artifact import ArtifactMeta


@dataclass(frozen=True)
class Letterbox:
    """How a frame maps into the network input: net = frame * scale + pad (per axis). For a tile, the
    "frame" is the crop and ``offset`` (x, y) is where the crop lies in the whole frame."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    frame_size: tuple[int, int]  # (width, height)
    offset: tuple[float, float] = (0.0, 0.0)

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy in network pixels -> frame pixels, clipped to the frame (the tile, for a tile)."""
        b = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
        b[:, 0::2] = (b[:, 0::2] - self.pad_x) / self.scale_x
        b[:, 1::2] = (b[:, 1::2] - self.pad_y) / self.scale_y
        w, h = self.frame_size
        np.clip(b[:, 0::2], 0, w, out=b[:, 0::2])
        np.clip(b[:, 1::2], 0, h, out=b[:, 1::2])
        if self.offset != (0.0, 0.0):
            b[:, 0::2] += np.float32(self.offset[0])
            b[:, 1::2] += np.float32(self.offset[1])
        return b

    def map_to_frame(self, plane: np.ndarray, interpolation: int = cv2.INTER_NEAREST) -> np.ndarray:
        """A (h, w) or (h, w, C) network-resolution map (e.g. a class map) -> frame resolution."""
        h_net, w_net = plane.shape[:2]
        x0, y0 = int(round(self.pad_x)), int(round(self.pad_y))
        x1 = int(round(w_net - self.pad_x)) if self.pad_x else w_net
        y1 = int(round(h_net - self.pad_y)) if self.pad_y else h_net
        crop = plane[y0:y1, x0:x1]
        w, h = self.frame_size
        return cv2.resize(crop, (w, h), interpolation=interpolation)


class Preprocessor:
    """Callable: frame -> ((1, 3, h, w) float32, Letterbox). Built from an ArtifactMeta."""

    def __init__(self, input_size: tuple[int, int], *, color: str = "RGB",
                 mean: tuple[float, ...] = (0.0, 0.0, 0.0), std: tuple[float, ...] = (1.0, 1.0, 1.0),
                 resize: str = "stretch", pad_value: int = 114) -> None:
        if resize not in ("stretch", "letterbox"):
            raise ValueError(f"resize must be 'stretch' or 'letterbox', got {resize!r}")
        if color not in ("RGB", "BGR"):
            raise ValueError(f"color must be 'RGB' or 'BGR', got {color!r}")
        self.height, self.width = int(input_size[0]), int(input_size[1])
        self.color = color
        self.resize = resize
        self.pad_value = pad_value
        # Fold /255, mean and std into one multiply-add per channel.
        std_arr = np.asarray(std, np.float32)
        self._scale = (1.0 / (255.0 * std_arr)).reshape(3, 1, 1)
        self._shift = (-np.asarray(mean, np.float32) / std_arr).reshape(3, 1, 1)

    @classmethod
    def from_meta(cls, meta: ArtifactMeta) -> "Preprocessor":
        return cls(meta.input_size, color=meta.color, mean=meta.mean, std=meta.std, resize=meta.resize,
                   pad_value=meta.pad_value)

    def geometry(self, frame_width: int, frame_height: int) -> Letterbox:
        if self.resize == "stretch":
            return Letterbox(self.width / frame_width, self.height / frame_height, 0.0, 0.0,
                             (frame_width, frame_height))
        s = min(self.width / frame_width, self.height / frame_height)
        new_w, new_h = int(round(frame_width * s)), int(round(frame_height * s))
        # the image is placed at whole pixels, the odd one of the border on the right / bottom (as
        # ultralytics' and NanoDet's letterboxes do): the geometry is that placement, not half a pixel off
        return Letterbox(new_w / frame_width, new_h / frame_height, float((self.width - new_w) // 2),
                         float((self.height - new_h) // 2), (frame_width, frame_height))

    def resized(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """(H, W, 3) uint8 BGR -> (h, w, 3) uint8 in the network's colour order, and the geometry."""
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        fh, fw = frame.shape[:2]
        geo = self.geometry(fw, fh)
        if self.resize == "stretch":
            out = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        else:
            new_w, new_h = int(round(fw * geo.scale_x)), int(round(fh * geo.scale_y))
            inner = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
            out = np.full((self.height, self.width, 3), self.pad_value, np.uint8)
            x0, y0 = int(round(geo.pad_x)), int(round(geo.pad_y))
            out[y0:y0 + new_h, x0:x0 + new_w] = inner
        if self.color == "RGB":
            out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
        return out, geo

    def normalize(self, image: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 in network colour order -> (3, h, w) float32 normalised."""
        chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
        chw *= self._scale
        chw += self._shift
        return chw

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        image, geo = self.resized(frame)
        return self.normalize(image)[None], geo

    def batch(self, frames: list[np.ndarray]) -> np.ndarray:
        """(B, 3, h, w) float32 of several frames (the INT8 calibrator's and evaluator's batches)."""
        return np.stack([self(f)[0][0] for f in frames]) if frames else np.zeros(
            (0, 3, self.height, self.width), np.float32)
