"""The live page output: each annotated frame is JPEG-encoded once, and only when a viewer or a
snapshot asks for it."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..core.types import Frame
from ..serve.guard import Limits
from ..serve.web import FrameHub, LiveServer


class HttpOutput:
    """The live page server; ``write`` feeds the stream "main", ``sink(NAME)`` gives each stream its own."""

    name = "http"

    def __init__(self, *, host: str, port: int, token: str, jpeg_quality: int,
                 status: Callable[[], dict[str, Any]], health: Callable[[], Any] | None = None,
                 record: Callable[[str, float], None] | None = None, review: Any = None,
                 extras: list[Any] | None = None, limits: Limits = Limits()) -> None:
        """health: the app's judgement for /healthz (edge_app.health.Health); record: where encode times
        go (the runtime's telemetry, stage "jpeg_encode"); review: the labelling page and API; extras:
        more routes (the streams API)."""
        self.quality = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)]
        self.hubs: dict[str, FrameHub] = {}
        self.server = LiveServer(self.hubs, status, host=host, port=port, token=token, health=health,
                                 review=review, extras=extras, limits=limits)
        self.record = record

    def _encode(self, image: np.ndarray) -> bytes | None:
        t0 = time.perf_counter()
        ok, buf = cv2.imencode(".jpg", image, self.quality)
        if self.record is not None:
            self.record("jpeg_encode", time.perf_counter() - t0)
        return buf.tobytes() if ok else None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def hub(self) -> FrameHub:
        """The first stream's frames (/stream.mjpg)."""
        return next(iter(self.hubs.values())) if self.hubs else self._hub("main")

    def _hub(self, name: str) -> FrameHub:
        hub = self.hubs.get(name)
        if hub is None:
            hub = self.hubs[name] = FrameHub(self._encode)
        return hub

    def sink(self, stream: str) -> "HttpSink":
        """The output of one stream: its frames at /streams/STREAM.mjpg (and on the page's grid)."""
        return HttpSink(self, stream, self._hub(stream))

    def drop(self, stream: str) -> None:
        hub = self.hubs.pop(stream, None)
        if hub is not None:
            hub.close()

    def write(self, image: np.ndarray, frame: Frame) -> None:
        self._hub("main").offer(image)  # the pipeline draws each frame on a fresh copy, so holding it is safe

    def close(self) -> None:
        self.server.close()


class HttpSink:
    """One stream's frames into the shared live server; closing it removes the stream's views."""

    name = "http"

    def __init__(self, output: HttpOutput, stream: str, hub: FrameHub) -> None:
        self.output, self.stream, self.hub = output, stream, hub
        self.url = f"{output.url}streams/{stream}.mjpg"

    def write(self, image: np.ndarray, frame: Frame) -> None:
        self.hub.offer(image)

    def close(self) -> None:
        self.output.drop(self.stream)
