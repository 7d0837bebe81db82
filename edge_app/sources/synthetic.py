"""synthetic:// — an animated scene with exact labels attached to every frame (the demo source).
``synthetic://?labels=off``: the same frames without labels, as a camera gives them (the scene is seeded,
so its truth can still be rebuilt from the frame index: ``SyntheticVideo(width, height, seed)``)."""
from __future__ import annotations

import time

from ..config.schema import SourceConfig
from ..core.types import Frame, FrameLabels
from ..datasets.synthetic import CLASSES, MASK_CLASSES, SyntheticVideo
from .base import FrameSource, Pacer


class SyntheticSource(FrameSource):
    scheme = "synthetic"

    def __init__(self, uri: str, *, width: int = 640, height: int = 480, fps: float = 15.0, seed: int = 0,
                 max_frames: int | None = None, realtime: bool = True) -> None:
        super().__init__(uri)
        from ..core.uri import flag

        self.labelled = flag(uri, "labels", True)
        self.video = SyntheticVideo(width, height, seed)
        self.period = 1.0 / fps
        self.max_frames = max_frames
        self.backpressure = not realtime  # not realtime: every frame, at the pipeline's pace

    def _run(self) -> None:
        self.stats.state = "playing"
        pacer = Pacer(self, 1.0 / self.period)
        index = 0
        while not self.stopping and (self.max_frames is None or index < self.max_frames):
            sample = self.video.next()
            labels = (FrameLabels(sample.truth, CLASSES, sample.mask, MASK_CLASSES, ids=sample.ids)
                      if self.labelled else None)
            self._emit(Frame(sample.image, index, index * self.period, time.monotonic(), labels, f"synthetic:{index}"))
            index += 1
            if pacer.tick():
                break
        if not self.stopping:
            self.stats.state = "ended"


def build(settings: SourceConfig) -> SyntheticSource:
    """The registry's builder (sources/registry.py) for synthetic://."""
    return SyntheticSource(settings.uri, width=settings.width, height=settings.height, fps=settings.fps,
                           seed=settings.seed, realtime=settings.realtime)
