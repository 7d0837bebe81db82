"""Sources by URI scheme (jetson-inference style): synthetic://, replay://, test://, file://, v4l2://,
csi://, rtsp://. ``open_source`` builds the right one from validated settings."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .base import FrameSource, LatestSlot, SourceStats
from .gstreamer import CaptureSettings

__all__ = ["CaptureSettings", "FrameSource", "LatestSlot", "SourceStats", "open_source"]


def _gst(uri: str, s: CaptureSettings, base: Path, seed: int) -> FrameSource:
    from .gstreamer import GstSource

    parts = urlsplit(uri)
    if parts.scheme == "file":
        local = Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
        uri = "file://" + str(local if local.is_absolute() else (base / local).resolve())
    return GstSource(uri, s)


def _synthetic(uri: str, s: CaptureSettings, base: Path, seed: int) -> FrameSource:
    from .synthetic import SyntheticSource

    return SyntheticSource(uri, width=s.width, height=s.height, fps=s.fps, seed=seed, realtime=s.realtime)


def _replay(uri: str, s: CaptureSettings, base: Path, seed: int) -> FrameSource:
    from .replay import ReplaySource

    parts = urlsplit(uri)
    local = Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
    return ReplaySource(uri, local if local.is_absolute() else base / local, fps=s.fps, loop=s.loop,
                        realtime=s.realtime)


SOURCES: dict[str, Callable[[str, CaptureSettings, Path, int], FrameSource]] = {
    "synthetic": _synthetic, "replay": _replay, "test": _gst, "file": _gst, "v4l2": _gst, "csi": _gst,
    "rtsp": _gst, "rtsps": _gst}


def open_source(uri: str, settings: CaptureSettings, base_dir: Path = Path("."), seed: int = 0) -> FrameSource:
    scheme = urlsplit(uri).scheme
    if scheme not in SOURCES:
        raise ValueError(f"{uri}: unknown source scheme '{scheme}' (expected one of {sorted(SOURCES)})")
    return SOURCES[scheme](uri, settings, base_dir, seed)
