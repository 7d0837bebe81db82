"""Sources by URI scheme (jetson-inference style): synthetic://, replay://, test://, file://, v4l2://,
csi://, rtsp://. ``open_source`` builds the right one from the validated ``[source]`` section."""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from typing import TYPE_CHECKING, Any

from ..core.uri import absolute_uri, scheme_of
from .base import FrameSource, LatestSlot, SourceStats
from .registry import SOURCES

if TYPE_CHECKING:
    from ..config.schema import SourceConfig

__all__ = ["FrameSource", "LatestSlot", "SourceConfig", "SourceStats", "open_source"]


def __getattr__(name: str) -> Any:
    # config's schema reads this package's registry (its source schemes): importing the schema here, at
    # import time, would be a cycle; ``edge_app.sources.SourceConfig`` is still there for callers
    if name == "SourceConfig":
        from ..config.schema import SourceConfig
        return SourceConfig
    raise AttributeError(name)


def open_source(settings: SourceConfig, base_dir: Path = Path(".")) -> FrameSource:
    """The source ``settings.uri`` names; a relative file:// or replay:// path is taken from ``base_dir``
    (the config file's folder)."""
    scheme = scheme_of(settings.uri)
    if scheme not in SOURCES:
        raise ValueError(f"{settings.uri}: unknown source scheme '{scheme}' (expected one of {sorted(SOURCES)})")
    settings = dataclasses.replace(settings, uri=absolute_uri(settings.uri, Path(base_dir).resolve()))
    module, function = SOURCES[scheme].split(":")
    build = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    source: FrameSource = build(settings)
    return source
