"""What a stream hands its annotated frames to: the MJPEG hub (http), an RTSP mount, an MP4 recorder, the
MQTT output (which takes events, not frames). A registry (``OUTPUTS``) maps names to them."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..core.types import Frame


@runtime_checkable
class Output(Protocol):
    name: str

    def write(self, image: np.ndarray, frame: Frame) -> None:
        """The annotated image (H, W, 3) BGR of ``frame``; never blocks the stream for long."""

    def close(self) -> None:
        """Finish (an MP4 finalised, a mount removed); the stream's last call."""
