"""replay:// — a labelled dataset (VOC, COCO, mask folders) played as a stream, labels attached.

A folder that holds boxes and masks of the same images (VOC ``annotations/`` beside ``masks/``, as
``synthetic.write_dataset`` writes) attaches both, so a detector and a segmenter are scored on one replay.
Frames are delivered at the configured ``width`` x ``height``, like every other source (the RTSP and
recording outputs need one frame size): an image of another size is resized and its labels with it (boxes
scaled, masks by nearest neighbour), so labels stay exact for the frame the models see. A dataset whose
images already have that size is played untouched. A corrupt image is logged, counted and skipped.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from ..config.schema import SourceConfig
from ..core.types import Frame, FrameLabels, GroundTruth
from ..core.uri import local_path
from ..datasets import DatasetError, load_image, load_mask, open_dataset
from .base import FrameSource, Pacer

log = logging.getLogger("edge_app.source")


def _scale_truth(truth: GroundTruth, sx: float, sy: float) -> GroundTruth:
    boxes = truth.boxes * np.array([sx, sy, sx, sy], np.float32)
    return GroundTruth(boxes, truth.classes, truth.crowd, truth.ignore, truth.area * (sx * sy))


class ReplaySource(FrameSource):
    scheme = "replay"

    def __init__(self, uri: str, path: Path, *, fps: float = 15.0, loop: bool = True,
                 split: Path | None = None, realtime: bool = True, size: tuple[int, int] | None = None) -> None:
        super().__init__(uri)
        self.dataset = open_dataset(path, split)
        if self.dataset.issues:
            log.warning("replay %s: %s", path, self.dataset.issues.summary())
        self.masks: dict[Path, Path] = {}  # image -> mask, when boxes and masks of the same images lie here
        self.mask_classes: tuple[str, ...] = ()
        self.mask_ignore: int | None = None
        if self.dataset.task == "detection":
            try:
                seg = open_dataset(path, split, task="segmentation")
            except DatasetError:
                seg = None
            if seg is not None and seg.task == "segmentation":
                self.masks = {s.image_path.resolve(): s.mask_path for s in seg.samples if s.mask_path is not None}
                self.mask_classes, self.mask_ignore = seg.classes, seg.ignore_index
        self.period = 1.0 / fps
        self.loop = loop
        self.size = size  # (width, height) of delivered frames; None keeps each image's own
        self.backpressure = not realtime  # not realtime: every frame, at the pipeline's pace
        self.resized = 0  # images that were not at the configured size

    def frame_of(self, i: int) -> tuple[np.ndarray, FrameLabels]:
        """Image i of the dataset at the delivered size, with its labels. Raises DatasetError."""
        ds = self.dataset
        sample = ds.samples[i]
        image = load_image(sample.image_path)
        h, w = image.shape[:2]
        tw, th = self.size or (w, h)
        if ds.task == "detection":
            assert sample.truth is not None
            truth = sample.truth
            if (tw, th) != (w, h):
                truth = _scale_truth(truth, tw / w, th / h)
            mask_path = self.masks.get(sample.image_path.resolve())
            mask = None if mask_path is None else load_mask(mask_path, sample.image_path, image.shape)
            if mask is not None and (tw, th) != (w, h):
                mask = cv2.resize(mask, (tw, th), interpolation=cv2.INTER_NEAREST)
            labels = FrameLabels(truth=truth, classes=ds.classes, mask=mask, mask_classes=self.mask_classes,
                                 ignore_index=self.mask_ignore, ids=sample.ids)
        else:
            assert sample.mask_path is not None  # segmentation datasets always have one
            mask = load_mask(sample.mask_path, sample.image_path, image.shape)
            if (tw, th) != (w, h):
                mask = cv2.resize(mask, (tw, th), interpolation=cv2.INTER_NEAREST)
            labels = FrameLabels(mask=mask, mask_classes=ds.classes, ignore_index=ds.ignore_index)
        if (tw, th) != (w, h):
            image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA if tw * th < w * h else cv2.INTER_LINEAR)
            self.resized += 1
            if self.resized == 1:
                log.info("replay: images are resized to the configured %dx%d (first: %s, %dx%d), labels with them",
                         tw, th, sample.image_path.name, w, h)
        return image, labels

    def _run(self) -> None:
        self.stats.state = "playing"
        pacer = Pacer(self, 1.0 / self.period)
        index = 0
        while not self.stopping:
            for i, sample in enumerate(self.dataset.samples):
                if self.stopping:
                    return
                try:
                    image, labels = self.frame_of(i)
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
            self.stats.loops += 1


def build(settings: SourceConfig) -> ReplaySource:
    """The registry's builder (sources/registry.py) for replay://."""
    path = local_path(settings.uri)
    assert path is not None
    return ReplaySource(settings.uri, path, fps=settings.fps, loop=settings.loop, realtime=settings.realtime,
                        size=(settings.width, settings.height))
