"""Families whose own post-processing has no NMS: one query (or slot), one object.

``yolo-e2e`` (YOLOv10, YOLO26 end-to-end): ``output`` (1, N, 6) rows of x1, y1, x2, y2 in input pixels,
score, class id, already the model's top N; kept when score > threshold.

``detr`` (RT-DETR, D-FINE, RF-DETR): boxes as normalised centre x, centre y, width, height (0..1 of the
input), in one of two layouts (``head_params["layout"]``):
- ``"topk"``: ``output`` (1, K, 6) rows of cx, cy, w, h, score, class id (ultralytics' RT-DETR export:
  the top K of queries x classes, scores sigmoid);
- ``"joined"``: ``output`` (1, Q, 4 + C), boxes then class scores (``score``: logits or sigmoid);
- ``"split"``: ``boxes`` (1, Q, 4) and ``scores`` (1, Q, C), logits (``score = "logits"``) or sigmoid;
  each query's best class.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...core.artifact import ArtifactError, ArtifactMeta
from ...core.boxes import cxcywh_to_xyxy
from .base import Head, rows_above, sigmoid


def one_hot_scores(score: np.ndarray, cls: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """(N,) scores of (N,) class ids -> (N, C) with each row's score in its class column, 0 elsewhere."""
    ids = np.asarray(cls).astype(np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(f"head {where}: class id {int(ids.max())} outside the metadata's {num_classes} classes")
    out = np.zeros((len(ids), num_classes), np.float32)
    out[np.arange(len(ids)), ids] = score
    return out


class YoloE2EHead(Head):
    name = "yolo-e2e"
    nms = False
    multi_label = False
    roles = ("output",)

    def __call__(self, outputs: Mapping[str, np.ndarray], i: int = 0,
                 floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        out = np.asarray(self.output(outputs, "output", i), np.float32)
        if out.ndim != 2 or out.shape[1] != 6:
            raise ValueError(f"head yolo-e2e: output rows of shape {out.shape}, expected (N, 6)")
        if floor is not None:
            out = out[out[:, 4] >= np.float32(floor)]
        return out[:, :4].copy(), one_hot_scores(out[:, 4], out[:, 5], self.meta.num_classes, self.name)


class DetrHead(Head):
    name = "detr"
    nms = False
    multi_label = False

    def __init__(self, meta: ArtifactMeta) -> None:
        layout = str(meta.head_params.get("layout", ""))
        if layout not in ("topk", "joined", "split"):
            raise ArtifactError(f"head detr: head_params layout {layout!r}: expected 'topk', 'joined' or 'split'")
        self.roles = ("boxes", "scores") if layout == "split" else ("output",)
        super().__init__(meta)
        self.layout = layout
        self.logits = self.params.get("score", "sigmoid") == "logits"
        h, w = meta.input_size
        self.scale = np.array([w, h, w, h], np.float32)

    def __call__(self, outputs: Mapping[str, np.ndarray], i: int = 0,
                 floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.layout == "topk":
            out = np.asarray(self.output(outputs, "output", i), np.float32)
            if out.ndim != 2 or out.shape[1] != 6:
                raise ValueError(f"head detr: output rows of shape {out.shape}, expected (K, 6)")
            if floor is not None:
                out = out[out[:, 4] >= np.float32(floor)]
            boxes = out[:, :4]
            scores = one_hot_scores(out[:, 4], out[:, 5], self.meta.num_classes, self.name)
        else:
            if self.layout == "joined":
                out = np.asarray(self.output(outputs, "output", i), np.float32)
                boxes, raw = out[:, :4], out[:, 4:]
            else:
                boxes = np.asarray(self.output(outputs, "boxes", i), np.float32)
                raw = self.output(outputs, "scores", i)
            scores = self.check_classes(sigmoid(raw) if self.logits else np.asarray(raw, np.float32))
            keep = rows_above(scores, floor)
            if keep is not None:
                boxes, scores = boxes[keep], scores[keep]
        return cxcywh_to_xyxy(boxes) * self.scale, scores
