"""What the streams, the batcher, calibration and the rollout manager may ask of a model, whatever runs it
(an ONNX artifact on ONNX Runtime / OpenVINO / TensorRT, or a classical OpenCV baseline)."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Model(Protocol):
    name: str
    task: str                      # "detection" | "segmentation"
    classes: tuple[str, ...]

    def predict(self, frame: np.ndarray) -> Any:
        """One BGR frame (H, W, 3) uint8 -> its ModelResult (detections or a mask, per-stage seconds)."""

    def reload_thresholds(self) -> None:
        """Read the per-class thresholds file again (SIGHUP)."""

    def describe(self) -> str:
        """One line for the log and /status: file, precision, backend."""

    def close(self) -> None:
        """Release the backend (sessions, engines)."""
