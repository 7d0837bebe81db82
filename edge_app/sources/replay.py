"""replay:// — a labelled dataset (VOC, COCO, mask folders) played as a stream, labels attached.

Frames keep their own size (so labels stay exact); a corrupt image is logged, counted and skipped.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..core.types import Frame, FrameLabels
from ..datasets import DatasetError, load_image, load_mask, open_dataset
from .base import FrameSource, Pacer

log = logging.getLogger("edge_app.source")


class ReplaySource(FrameSource):
    scheme = "replay"

    def __init__(self, uri: str, path: Path, *, fps: float = 15.0, loop: bool = True,
                 split: Path | None = None, realtime: bool = True) -> None:
        super().__init__(uri)
        self.dataset = open_dataset(path, split)
        if self.dataset.issues:
            log.warning("replay %s: %s", path, self.dataset.issues.summary())
        self.period = 1.0 / fps
        self.loop = loop
        self.backpressure = not realtime  # not realtime: every frame, at the pipeline's pace

    def labels_for(self, i: int, shape: tuple[int, ...]) -> FrameLabels:
        ds = self.dataset
        sample = ds.samples[i]
        if ds.task == "detection":
            return FrameLabels(truth=sample.truth, classes=ds.classes)
        assert sample.mask_path is not None  # segmentation datasets always have one
        mask = load_mask(sample.mask_path, sample.image_path, shape)
        return FrameLabels(mask=mask, mask_classes=ds.classes, ignore_index=ds.ignore_index)

    def _run(self) -> None:
        self.stats.state = "playing"
        pacer = Pacer(self, 1.0 / self.period)
        index = 0
        while not self.stopping:
            for i, sample in enumerate(self.dataset.samples):
                if self.stopping:
                    return
                try:
                    image = load_image(sample.image_path)
                    labels = self.labels_for(i, image.shape)
                except DatasetError as exc:
                    self.stats.bad_frames += 1
                    self.stats.last_error = str(exc)
                    log.warning("replay: skipped frame %d: %s", i, exc)
                    continue
                self._emit(Frame(image, index, index * self.period, time.monotonic(), labels,
                                 str(sample.image_path)))
                index += 1
                if pacer.tick():
                    return
            if not self.loop:
                self.stats.state = "ended"
                return
