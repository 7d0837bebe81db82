"""Recording output: the annotated stream to MP4 segments (splitmuxsink), finalised on close (EOS),
so files stay valid after SIGTERM. The oldest segments beyond ``max_files`` are deleted, and sooner when
the disk runs low."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.types import Frame
from ..health.disk import DiskBudget, free_bytes
from ..gst import gst, make
from .encoder import frame_caps, h264_elements, link_all, push

log = logging.getLogger("edge_app.record")


class RecordOutput:
    """Segments of the annotated stream. A disk running low is handled as an NVR does: the oldest
    segments go first; with none left to delete (or when writing fails) recording pauses, says why in the
    health, and resumes by itself when there is room again. On the outbox's disk it never eats into the
    reserve kept for events."""

    name = "record"

    def __init__(self, *, directory: Path, segment_s: int, max_files: int, width: int, height: int,
                 fps: float, bitrate_kbps: int = 2000, file: str = "", disk: DiskBudget | None = None) -> None:
        """file: one MP4 of that name instead of timestamped segments (``run INPUT file:///out.mp4``)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files, self.width, self.height, self.fps = max_files, width, height, fps
        self.segment_s, self.bitrate_kbps, self.file = segment_s, bitrate_kbps, file
        self.single = bool(file)
        self.disk = disk or DiskBudget()
        # room for about 10 s of video, at least 4 MB: below it old segments go, then recording pauses
        self.min_free = max(4 * 2**20, bitrate_kbps * 1000 // 8 * 10)
        self.pipeline: Any = None
        self.paused = ""  # why recording is paused ("" while it records)
        self._t0: float | None = None
        self._last_check = 0.0
        self._start()

    def _start(self) -> None:
        Gst = gst().Gst
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.pipeline = Gst.Pipeline.new("record")
        self.src = make("appsrc", name="src", is_live=True, format=Gst.Format.TIME, do_timestamp=False,
                        block=False)
        self.src.set_property("caps", frame_caps(self.width, self.height, self.fps))
        if self.single:  # splitmuxsink formats the location with the fragment number: escape any '%'
            location, split = str(self.directory / self.file).replace("%", "%%"), 0
        else:
            location, split = str(self.directory / f"edge-{stamp}-%05d.mp4"), int(self.segment_s) * Gst.SECOND
        sink = make("splitmuxsink", location=location, max_size_time=split)
        link_all(self.pipeline, [self.src, *h264_elements(self.bitrate_kbps, self.fps), make("queue"), sink])
        self.pipeline.set_state(Gst.State.PLAYING)
        self._t0 = None

    def write(self, image: np.ndarray, frame: Frame) -> None:
        now = time.monotonic()
        if now - self._last_check > 2:
            self._last_check = now
            self._check()
        if self.paused:
            return
        if self._t0 is None:
            self._t0 = now
        if image.shape[:2] != (self.height, self.width):
            import cv2
            image = cv2.resize(image, (self.width, self.height))
        push(self.src, image, int((now - self._t0) * 1e9), int(1e9 / self.fps))

    def _room(self) -> int:
        return free_bytes(self.directory) - self.disk.reserve_for(self.directory)

    def _check(self) -> None:
        """Every few seconds: a write error, the disk's room, old segments; pause or resume."""
        self.prune()
        if self.paused:
            if not self.single and self._room() >= 2 * self.min_free:
                log.info("recording resumes in %s (%.0f MB free)", self.directory, self._room() / 2**20)
                self.paused = ""
                self.disk.clear("recording")
                self._start()
            return
        Gst = gst().Gst
        msg = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        if msg is not None:
            self._pause(f"stopped: {msg.parse_error()[0].message}")
            return
        segments = self._segments()
        while self._room() < self.min_free and len(segments) > 1:  # the newest is being written
            oldest = segments.pop(0)
            log.warning("recording: disk low in %s, removing the oldest segment %s", self.directory, oldest.name)
            oldest.unlink(missing_ok=True)
        if self._room() < self.min_free:
            self._pause(f"paused: {max(0, self._room()) / 2**20:.1f} MB free in {self.directory} "
                        f"(needs {self.min_free / 2**20:.0f} MB beyond the events' reserve)")

    def _pause(self, why: str) -> None:
        log.error("recording %s", why)
        self.paused = why
        self.disk.problem("recording", why)
        self._finish()

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("edge-*.mp4"), key=lambda p: p.stat().st_mtime)

    def prune(self) -> None:
        if self.max_files <= 0 or self.single:
            return
        for old in self._segments()[:-self.max_files]:
            old.unlink(missing_ok=True)

    def _finish(self, timeout: float = 3.0) -> None:
        if self.pipeline is None:
            return
        Gst = gst().Gst
        self.src.emit("end-of-stream")
        bus = self.pipeline.get_bus()
        msg = bus.timed_pop_filtered(int(timeout * Gst.SECOND), Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is None or msg.type == Gst.MessageType.ERROR:
            log.warning("recording did not finish cleanly (%s)", "timeout" if msg is None else msg.parse_error()[0].message)
        self.pipeline.set_state(Gst.State.NULL)
        self.pipeline = None

    def close(self, timeout: float = 3.0) -> None:
        self._finish(timeout)
        self.prune()
