"""Counting lines: the rule that turns identities' anchors into crossings (numpy only; ``counting.Analytics``
runs it on the tracks live, on a tracks file for ``evaluate-counts``, and on the truth's identities).

A crossing counts once per identity and direction, only when its anchor moved from one side of the line
to the other *through the segment itself* (not its extension), and it was seen on both sides: the side is
remembered per identity as the last side it was on clearly (``margin`` x its box height away from the
line: hysteresis), so jitter on the line, an anchor exactly on it, or an identity that appears already
past it never counts. "in" is the move to the left of the direction from the first point to the second
(for a line drawn left to right: upwards on the screen), "out" the other way.

Repairs of split identities, for tracks only (the truth's identities are whole): a new id that continues
a vanished one takes over its sides (``inherit``, the counting memory of memory.py), ``count_at_end`` (on
by default: a track lost within the margin past the line, moving away, has crossed) and, measured and off
by default, ``count_at_start`` (a track first seen within the margin came from the side it is on).
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from ..core import geometry

Crossing = tuple["Line", Hashable, str, str, np.ndarray]  # line, key, direction, class, anchor


@dataclass
class Line:
    name: str
    a: np.ndarray
    b: np.ndarray
    classes: frozenset[str]
    model: str
    margin: float = 0.0                 # share of the box height (hysteresis)
    counts: dict[str, collections.Counter[str]] = field(default_factory=lambda: {"in": collections.Counter(),
                                                                               "out": collections.Counter()})
    last: dict[Hashable, tuple[float, np.ndarray]] = field(default_factory=dict)  # last clear side, anchor there
    counted: set[tuple[Hashable, str]] = field(default_factory=set)

    def takes(self, name: str, model: str) -> bool:
        return not (self.classes and name not in self.classes) and not (self.model and self.model != model)

    def cross(self, key: Hashable, direction: str, name: str) -> bool:
        """Count a crossing, once per identity and direction; True when it counted."""
        if (key, direction) in self.counted:
            return False
        self.counted.add((key, direction))
        self.counts[direction][name] += 1
        return True

    def state(self, key: Hashable) -> tuple[tuple[float, np.ndarray] | None, tuple[str, ...]]:
        """What an identity leaves to one that continues it: its last clear side and the directions crossed."""
        return self.last.get(key), tuple(d for d in ("in", "out") if (key, d) in self.counted)


def step(lines: list[Line], model: str, keys: Sequence[Hashable], points: np.ndarray, heights: np.ndarray,
         names: list[str], start: bool = False) -> list[Crossing]:
    """One frame of identities: keys (N,), anchors (N, 2), box heights (N,), class names (N,) -> the
    crossings counted. start: count_at_start (tracks only)."""
    out: list[Crossing] = []
    for line in lines:
        if line.model and line.model != model:
            continue
        sides = geometry.side(points, line.a, line.b)
        # Hysteresis: a side is taken only margin x the box height away from the line, so feet that
        # jitter across it (a person walking along it, a detection box that breathes) never count.
        clear = geometry.line_distance(points, line.a, line.b) >= line.margin * heights
        for key, p, s, name, ok in zip(keys, points, sides, names, clear):
            if line.classes and name not in line.classes or s == 0:
                continue
            if not ok:
                if start and key not in line.last:  # count_at_start: where it came from, until it is clear
                    line.last[key] = (float(s), p)
                continue
            prev = line.last.get(key)
            line.last[key] = (float(s), p)
            if prev is None or prev[0] == s:
                continue
            if geometry.crosses_segment(prev[1][None], p[None], line.a, line.b)[0]:
                direction = "in" if s < 0 else "out"
                if line.cross(key, direction, name):
                    out.append((line, key, direction, name, p))
    return out


def inherit(lines: list[Line], new: Hashable, old: Hashable, ended: dict | None) -> None:
    """``new`` continues the vanished ``old`` (the counting memory): it takes over old's last clear side of
    each line and the directions old crossed (``ended``: old's states kept when it was forgotten, else read
    now). The old key gives them up: were it found again, the same crossing would not count twice."""
    for line in lines:
        if ended is not None:
            last, dirs = ended.get(line.name, (None, ()))
        else:
            last, dirs = line.state(old)
            line.last.pop(old, None)
        if last is not None:
            line.last.setdefault(new, last)
        line.counted.update((new, d) for d in dirs)


def at_end(lines: list[Line], key: Hashable, model: str, name: str, point: np.ndarray,
           velocity: np.ndarray) -> list[Crossing]:
    """count_at_end: an identity that ends on the other side of a line than its last clear side, having
    passed through the segment and moving further away at its last velocity (2,), has crossed."""
    out: list[Crossing] = []
    for line in lines:
        prev = line.last.get(key)
        if prev is None or not line.takes(name, model):
            continue
        s = float(geometry.side(point[None], line.a, line.b)[0])
        d = line.b - line.a
        away = np.sign(d[0] * velocity[1] - d[1] * velocity[0]) == s
        if s != 0 and s != prev[0] and away and geometry.crosses_segment(prev[1][None], point[None], line.a, line.b)[0]:
            line.last[key] = (s, point)
            direction = "in" if s < 0 else "out"
            if line.cross(key, direction, name):
                out.append((line, key, direction, name, point))
    return out
