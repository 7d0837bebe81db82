"""``gfl``: Generalized Focal Loss heads (NanoDet, PicoDet): per anchor point, class scores and each
side's distance as a distribution over ``reg_max + 1`` bins.

Outputs: ``scores`` (1, N, C) and ``bins`` (1, N, 4 (reg_max + 1)), the anchor points of every stride
concatenated, each level row-major (i = y * W + x). A side's distance = softmax(bins) . [0..reg_max] x
stride, from the anchor centre ((x + offset) s, (y + offset) s); sides in ``sides`` order (NanoDet: left,
top, right, bottom). ``score``: the scores are already sigmoid (NanoDet's TF.js graph) or logits.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...core.artifact import ArtifactError, ArtifactMeta
from .base import Head, rows_above, sigmoid

SIDES = "ltrb"


def anchor_points(input_size: tuple[int, int], strides: list[int], offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres (N, 2) float32 in input pixels and their strides (N,), level after level, row-major; a
    level's grid is ceil(size / stride) (what a stride-s convolution of a padded input gives)."""
    h, w = input_size
    centres, per = [], []
    for s in strides:
        gh, gw = -(-h // s), -(-w // s)
        ys, xs = np.mgrid[0:gh, 0:gw]
        centres.append(np.stack([(xs.ravel() + offset) * s, (ys.ravel() + offset) * s], 1))
        per.append(np.full(gh * gw, s, np.float32))
    return np.concatenate(centres).astype(np.float32), np.concatenate(per)


class GflHead(Head):
    name = "gfl"
    roles = ("scores", "bins")

    def __init__(self, meta: ArtifactMeta) -> None:
        super().__init__(meta)
        self.reg_max = int(self.param("reg_max"))
        sides = str(self.params.get("sides", SIDES))
        if sorted(sides) != sorted(SIDES):
            raise ArtifactError(f"head gfl: sides {sides!r}: expected an order of l, t, r, b")
        self.order = [sides.index(c) for c in SIDES]  # column of l, t, r, b
        self.centres, self.strides = anchor_points(meta.input_size, [int(s) for s in self.param("strides")],
                                                   float(self.params.get("offset", 0.5)))
        self.logits = self.params.get("score", "sigmoid") == "logits"
        self.project = np.arange(self.reg_max + 1, dtype=np.float32)

    def __call__(self, outputs: Mapping[str, np.ndarray], i: int = 0,
                 floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        scores = self.output(outputs, "scores", i)
        bins = self.output(outputs, "bins", i)
        n = len(self.centres)
        if scores.shape[0] != n or bins.shape != (n, 4 * (self.reg_max + 1)):
            raise ValueError(f"head gfl: outputs {scores.shape} and {bins.shape} for {n} anchor points of strides "
                             f"{sorted(set(self.strides.astype(int).tolist()))} and reg_max {self.reg_max}")
        scores = self.check_classes(sigmoid(scores) if self.logits else np.asarray(scores, np.float32))
        keep = rows_above(scores, floor)
        if keep is None:
            return self.decode(bins), scores
        return self.decode(bins[keep], keep), scores[keep]

    def decode(self, bins: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
        """(N, 4 (R+1)) bins -> (N, 4) xyxy; ``index``: only those anchor points (the bins given are theirs)."""
        b = np.asarray(bins, np.float32).reshape(-1, 4, self.reg_max + 1)
        e = np.exp(b - b.max(axis=2, keepdims=True))
        dist = (e @ self.project) / e.sum(axis=2)  # (N, 4) expected bin, in the sides' order
        centres = self.centres if index is None else self.centres[index]
        strides = self.strides if index is None else self.strides[index]
        d = dist[:, self.order] * strides[:, None]
        return np.concatenate([centres - d[:, :2], centres + d[:, 2:]], axis=1).astype(np.float32)
