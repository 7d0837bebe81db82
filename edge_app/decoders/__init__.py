"""Network outputs -> results in frame coordinates. One decoder per artifact task (see registry)."""
from __future__ import annotations

from .detection import DetectionDecoder
from .segmentation import SegmentationDecoder

DECODERS = {"detection": DetectionDecoder, "segmentation": SegmentationDecoder}

__all__ = ["DECODERS", "DetectionDecoder", "SegmentationDecoder"]
