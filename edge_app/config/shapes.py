"""Lines and zones written on a command line, ``NAME:x1,y1,x2,y2[,...]`` (``edge-app run``, ``track`` and
``evaluate-counts`` ``--line`` / ``--zone``): parsed once, here, into the config's own LineConfig /
ZoneConfig and checked by the same rules as ``[[analytics.lines]]`` / ``[[analytics.zones]]``
(``core.geometry.problems``)."""
from __future__ import annotations

from ..core.geometry import problems
from .schema import LineConfig, ZoneConfig


def parse_shape(text: str, kind: str, width: int, height: int, flag: str | None = None,
                frame_from: str = "the frame") -> "LineConfig | ZoneConfig":
    """A line or zone given on the command line, ``NAME:x1,y1,x2,y2[,...]`` (the form of ``edge-app
    evaluate-counts --line/--zone``, ``edge-app track --line/--zone``, and later ``run``'s), checked as
    the config's ``[[analytics.lines]]`` / ``[[analytics.zones]]`` are. Points are pixels of the
    ``width`` x ``height`` frame, or 0..1 of it when every coordinate lies in 0..1 (a shape within one
    pixel of the corner would be no use). kind: "line" | "zone"; frame_from: where the frame size came
    from (errors say it). Raises ValueError naming the flag."""
    flag = flag or f"--{kind}"
    form = "NAME:x1,y1,x2,y2" if kind == "line" else "NAME:x1,y1,x2,y2,x3,y3[,...]"
    name, sep, rest = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"{flag} {text!r}: expected {form}")
    try:
        values = [float(v) for v in rest.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: non-numeric coordinate (expected {form})") from None
    if len(values) % 2:
        raise ValueError(f"{flag} {text!r}: an odd number of coordinates (expected x,y pairs: {form})")
    points = tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))
    units = "normalized" if values and all(0.0 <= v <= 1.0 for v in values) else "pixels"
    found = problems(f"{flag} {name}", points, units, width, height, polygon=kind == "zone", frame_from=frame_from)
    if found:
        raise ValueError("; ".join(found))
    cls = LineConfig if kind == "line" else ZoneConfig
    return cls(name=name.strip(), points=points, units=units)


def parse_line(text: str, width: int, height: int, frame_from: str = "the frame") -> LineConfig:
    """``--line NAME:x1,y1,x2,y2`` (parse_shape for a line)."""
    shape = parse_shape(text, "line", width, height, frame_from=frame_from)
    assert isinstance(shape, LineConfig)
    return shape


def parse_zone(text: str, width: int, height: int, frame_from: str = "the frame") -> ZoneConfig:
    """``--zone NAME:x1,y1,x2,y2,x3,y3[,...]`` (parse_shape for a zone)."""
    shape = parse_shape(text, "zone", width, height, frame_from=frame_from)
    assert isinstance(shape, ZoneConfig)
    return shape
