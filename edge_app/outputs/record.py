"""Recording output: the annotated stream to MP4 segments (splitmuxsink), finalised on close (EOS),
so files stay valid after SIGTERM. The oldest segments beyond ``max_files`` are deleted."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..core.types import Frame
from ..stream.gst import gst, make
from .encoder import frame_caps, h264_elements, link_all, push

log = logging.getLogger("edge_app.record")


class RecordOutput:
    name = "record"

    def __init__(self, *, directory: Path, segment_s: int, max_files: int, width: int, height: int,
                 fps: float, bitrate_kbps: int = 2000, file: str = "") -> None:
        """file: one MP4 of that name instead of timestamped segments (``run INPUT file:///out.mp4``)."""
        Gst = gst().Gst
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files, self.width, self.height, self.fps = max_files, width, height, fps
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.pipeline = Gst.Pipeline.new("record")
        self.src = make("appsrc", name="src", is_live=True, format=Gst.Format.TIME, do_timestamp=False,
                        block=False)
        self.src.set_property("caps", frame_caps(width, height, fps))
        self.single = bool(file)
        if self.single:  # splitmuxsink formats the location with the fragment number: escape any '%'
            location, split = str(self.directory / file).replace("%", "%%"), 0
        else:
            location, split = str(self.directory / f"edge-{stamp}-%05d.mp4"), int(segment_s) * Gst.SECOND
        sink = make("splitmuxsink", location=location, max_size_time=split)
        link_all(self.pipeline, [self.src, *h264_elements(bitrate_kbps, fps), make("queue"), sink])
        self.pipeline.set_state(Gst.State.PLAYING)
        self._t0: float | None = None
        self._last_prune = 0.0

    def write(self, image: np.ndarray, frame: Frame) -> None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        if image.shape[:2] != (self.height, self.width):
            import cv2
            image = cv2.resize(image, (self.width, self.height))
        push(self.src, image, int((now - self._t0) * 1e9), int(1e9 / self.fps))
        if now - self._last_prune > 5:
            self._last_prune = now
            self.prune()

    def prune(self) -> None:
        if self.max_files <= 0 or self.single:
            return
        files = sorted(self.directory.glob("edge-*.mp4"), key=lambda p: p.stat().st_mtime)
        for old in files[:-self.max_files]:
            old.unlink(missing_ok=True)

    def close(self, timeout: float = 3.0) -> None:
        Gst = gst().Gst
        self.src.emit("end-of-stream")
        bus = self.pipeline.get_bus()
        msg = bus.timed_pop_filtered(int(timeout * Gst.SECOND), Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is None or msg.type == Gst.MessageType.ERROR:
            log.warning("recording did not finish cleanly (%s)", "timeout" if msg is None else msg.parse_error()[0].message)
        self.pipeline.set_state(Gst.State.NULL)
        self.prune()
