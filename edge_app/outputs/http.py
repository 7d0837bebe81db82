"""The live page output: encodes each annotated frame to JPEG once for every viewer."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..core.types import Frame
from ..web import FrameHub, LiveServer


class HttpOutput:
    name = "http"

    def __init__(self, *, host: str, port: int, token: str, jpeg_quality: int,
                 status: Callable[[], dict[str, Any]], healthy: Callable[[], bool]) -> None:
        self.hub = FrameHub()
        self.quality = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)]
        self.server = LiveServer(self.hub, status, host=host, port=port, token=token, healthy=healthy)

    @property
    def url(self) -> str:
        return self.server.url

    def write(self, image: np.ndarray, frame: Frame) -> None:
        ok, buf = cv2.imencode(".jpg", image, self.quality)
        if ok:
            self.hub.publish(buf.tobytes())

    def close(self) -> None:
        self.server.close()
