"""The live page output: each annotated frame is JPEG-encoded once, and only when a viewer or a
snapshot asks for it."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..core.types import Frame
from ..web import FrameHub, LiveServer


class HttpOutput:
    name = "http"

    def __init__(self, *, host: str, port: int, token: str, jpeg_quality: int,
                 status: Callable[[], dict[str, Any]], health: Callable[[], Any] | None = None,
                 record: Callable[[str, float], None] | None = None, review: Any = None) -> None:
        """health: the app's judgement for /healthz (edge_app.health.Health); record: where encode times
        go (the runtime's telemetry, stage "jpeg_encode"); review: the labelling page and API."""
        self.quality = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)]
        self.hub = FrameHub(self._encode)
        self.server = LiveServer(self.hub, status, host=host, port=port, token=token, health=health,
                                 review=review)
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

    def write(self, image: np.ndarray, frame: Frame) -> None:
        self.hub.offer(image)  # the pipeline draws each frame on a fresh copy, so holding it is safe

    def close(self) -> None:
        self.server.close()
