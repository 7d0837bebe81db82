"""What every head decoder is: raw outputs of one image -> candidate boxes and per-class scores.

Thresholds, top-k, NMS (or none), class groups and the mapping back to the frame are the detection
decoder's (``decoders.detection``), the same for every family; a head only knows its own layout.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...core.artifact import ArtifactError, ArtifactMeta


class Head:
    """Base of the head decoders. ``nms``: the family's own post-processing runs NMS (SSD, GFL, YOLO) or
    not (YOLOv10/YOLO26 end-to-end, DETR: one query, one object). ``multi_label``: every class of a box
    scoring above its threshold is a candidate (SSD, NanoDet's multiclass NMS), or only the box's best
    class (YOLO's and DETR's post-processing)."""

    name = ""
    nms = True
    multi_label = True
    roles: tuple[str, ...] = ()

    def __init__(self, meta: ArtifactMeta) -> None:
        self.meta = meta
        self.params: dict[str, Any] = dict(meta.head_params)
        missing = [r for r in self.roles if r not in meta.outputs]
        if missing:
            raise ArtifactError(f"head {self.name!r}: metadata outputs lack {missing} (has {sorted(meta.outputs)})")
        self.names = {r: meta.outputs[r] for r in self.roles}

    def param(self, key: str) -> Any:
        if key not in self.params:
            raise ArtifactError(f"head {self.name!r}: metadata head_params lack {key!r} (has {sorted(self.params)})")
        return self.params[key]

    def output(self, outputs: Mapping[str, np.ndarray], role: str, i: int) -> np.ndarray:
        """Image ``i`` of the output playing ``role``."""
        return np.asarray(outputs[self.names[role]])[i]

    def __call__(self, outputs: Mapping[str, np.ndarray], i: int = 0,
                 floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Image ``i`` of a batch -> (boxes (N, 4) float32 xyxy in network-input pixels, scores (N, C)
        float32); ``floor``: only rows whose best score reaches it (fewer boxes to decode; the decoder
        passes its lowest class threshold)."""
        raise NotImplementedError

    def check_classes(self, scores: np.ndarray) -> np.ndarray:
        if scores.shape[1] != self.meta.num_classes:
            raise ValueError(f"head {self.name}: scores have {scores.shape[1]} classes, metadata names "
                             f"{self.meta.num_classes}")
        return scores


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.asarray(x, np.float32)))).astype(np.float32)




def rows_above(scores: np.ndarray, floor: float | None) -> np.ndarray | None:
    """Indices of the rows of (N, C) scores whose best score is >= floor (None: every row)."""
    if floor is None or floor <= 0:
        return None
    return np.flatnonzero(np.asarray(scores, np.float32).max(axis=1) >= np.float32(floor))
