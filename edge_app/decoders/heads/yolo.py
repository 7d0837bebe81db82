"""``yolo``: one dense output, boxes as centre x, centre y, width, height in input pixels.

Two layouts (``head_params["layout"]``):
- ``"anchor-free"``: YOLOv8 / v11 / YOLOv5u raw output (1, 4 + C, N): channels first, class scores
  already sigmoid, no objectness; N = the anchor points of strides 8, 16, 32.
- ``"anchor-based"``: YOLOv5 (1, N, 5 + C): rows of cx, cy, w, h, objectness, C class probabilities; a
  class's score = objectness x its probability; N = 3 anchors x the points of strides 8, 16, 32.
Both families' own post-processing keeps each box's best class only, then class-wise NMS.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...core.artifact import ArtifactError, ArtifactMeta
from ...core.boxes import cxcywh_to_xyxy
from .base import Head, rows_above

LAYOUTS = ("anchor-free", "anchor-based")


class YoloHead(Head):
    name = "yolo"
    multi_label = False
    roles = ("output",)

    def __init__(self, meta: ArtifactMeta) -> None:
        super().__init__(meta)
        self.layout = str(self.param("layout"))
        if self.layout not in LAYOUTS:
            raise ArtifactError(f"head yolo: layout {self.layout!r}: expected one of {LAYOUTS}")

    def __call__(self, outputs: Mapping[str, np.ndarray], i: int = 0,
                 floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        out = np.asarray(self.output(outputs, "output", i), np.float32)
        c = self.meta.num_classes
        if self.layout == "anchor-free":
            if out.shape[0] != 4 + c:
                raise ValueError(f"head yolo: output has {out.shape[0]} channels, expected 4 + {c} classes")
            boxes, scores = out[:4].T, out[4:].T
        else:
            if out.shape[1] != 5 + c:
                raise ValueError(f"head yolo: rows have {out.shape[1]} values, expected 5 + {c} classes")
            boxes, scores = out[:, :4], out[:, 5:] * out[:, 4:5]
        keep = rows_above(scores, floor)
        if keep is not None:
            boxes, scores = boxes[keep], scores[keep]
        return cxcywh_to_xyxy(boxes), np.ascontiguousarray(scores)
