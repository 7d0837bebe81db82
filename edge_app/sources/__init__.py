"""Sources by URI scheme (jetson-inference style): synthetic://, replay://, test://, file://, v4l2://,
csi://, rtsp://. ``open_source`` builds the right one from the validated ``[source]`` section."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from ..config.schema import SourceConfig
from ..core.uri import absolute_uri, scheme_of
from .base import FrameSource, LatestSlot, SourceStats

__all__ = ["FrameSource", "LatestSlot", "SourceConfig", "SourceStats", "open_source"]


def _gst(s: SourceConfig) -> FrameSource:
    from .gstreamer import GstSource

    return GstSource(s)


def _synthetic(s: SourceConfig) -> FrameSource:
    from .synthetic import SyntheticSource

    return SyntheticSource(s.uri, width=s.width, height=s.height, fps=s.fps, seed=s.seed, realtime=s.realtime)


def _replay(s: SourceConfig) -> FrameSource:
    from ..core.uri import local_path
    from .replay import ReplaySource

    path = local_path(s.uri)
    assert path is not None
    return ReplaySource(s.uri, path, fps=s.fps, loop=s.loop, realtime=s.realtime, size=(s.width, s.height))


SOURCES: dict[str, Callable[[SourceConfig], FrameSource]] = {
    "synthetic": _synthetic, "replay": _replay, "test": _gst, "file": _gst, "v4l2": _gst, "csi": _gst,
    "rtsp": _gst, "rtsps": _gst}


def open_source(settings: SourceConfig, base_dir: Path = Path(".")) -> FrameSource:
    """The source ``settings.uri`` names; a relative file:// or replay:// path is taken from ``base_dir``
    (the config file's folder)."""
    scheme = scheme_of(settings.uri)
    if scheme not in SOURCES:
        raise ValueError(f"{settings.uri}: unknown source scheme '{scheme}' (expected one of {sorted(SOURCES)})")
    settings = dataclasses.replace(settings, uri=absolute_uri(settings.uri, Path(base_dir).resolve()))
    return SOURCES[scheme](settings)
