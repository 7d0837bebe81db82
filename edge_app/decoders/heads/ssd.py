"""``ssd``: boxes already decoded in the graph (1, A, 4) xyxy in input pixels and per-class scores
(1, A, C') — softmax with a background column, or sigmoid — as our trained SSDs and the imported TF
Object Detection API graphs give them."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .base import Head, rows_above


class SsdHead(Head):
    name = "ssd"
    roles = ("boxes", "scores")

    def __call__(self, outputs: Mapping[str, np.ndarray], i: int = 0,
                 floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        boxes = self.output(outputs, "boxes", i)
        scores = self.check_classes(self.output(outputs, "scores", i)[:, 1:] if self.meta.background
                                    else self.output(outputs, "scores", i))
        keep = rows_above(scores, floor)
        return (boxes, scores) if keep is None else (boxes[keep], scores[keep])
