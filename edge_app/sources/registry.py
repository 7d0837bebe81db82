"""The source registry: URI scheme -> the builder of its source ("module:function" of this package,
imported only when a source of that scheme is opened). Every list of source schemes (the config's check,
the command line's INPUT) is this table's keys: a scheme is added here once."""
from __future__ import annotations

SOURCES: dict[str, str] = {
    "synthetic": "synthetic:build", "replay": "replay:build", "test": "gstreamer:build", "file": "gstreamer:build",
    "v4l2": "gstreamer:build", "csi": "gstreamer:build", "rtsp": "gstreamer:build", "rtsps": "gstreamer:build"}
SCHEMES: tuple[str, ...] = tuple(SOURCES)
