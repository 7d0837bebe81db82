"""What counting, the streams and ``edge-app track`` ask of a tracker, so a second one slots in beside
the ByteTrack-style one (as roboflow trackers' BaseTracker): ``update`` per frame, ``reset`` when a file
loops, ``confirmed_total`` for /status."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..core.types import Detections, Tracks


class BaseTracker(ABC):
    confirmed_total: int = 0   # identities given so far

    @abstractmethod
    def update(self, det: Detections, t: float, frame: np.ndarray | None = None) -> Tracks:
        """This frame's detections at time ``t`` (s) -> the confirmed tracks updated by it; ``frame``
        (H, W, 3) when the tracker uses pixels (camera motion, appearance)."""

    @abstractmethod
    def reset(self) -> None:
        """Forget every track (a looping file starts again); ids are never reused."""
