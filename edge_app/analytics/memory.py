"""The counting memory: who vanished where, so that a person who comes back under a new id is not a new
person to the lines (numpy only; used by ``counting.Analytics``, live and on files alike).

A tracker loses a person hidden for longer than its lost buffer; the person comes back under a new id,
often on the other side of a line it crossed while hidden, and neither id has crossed. The memory keeps,
for ``memory_s`` seconds after an identity was last seen, where it was (its anchor, its box height) and how it
moved (its anchor's velocity over its last ``VELOCITY_S`` seconds). An identity seen for the first time
is matched to a vanished one when its anchor lies within ``radius`` box heights of where the vanished one
was last seen, its box is of a like size, and no other vanished identity fits better.
The new id then inherits the old one's side of each line (and the directions it already crossed), so the
rule counts the crossing made in the gap; the tracker's ids are untouched (counting only).
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

VELOCITY_S = 1.0        # the velocity of an identity: its anchor's displacement over its last second seen
# Where a vanished identity is looked for: where it was last seen, moved at its last velocity for at most
# CARRY_S. Measured on the shared sequences' tracks (README): the last position finds more of the right
# identities than any extrapolation (people slow down or stop behind what hides them, and the last boxes
# before a loss are partly hidden ones whose anchors drift), and a reach that grew with the gap, or
# leaving out identities last seen at the frame's edge, counted worse out-of-sample.
CARRY_S = 0.0
SIZE_RATIO = 1.5        # a like size: box heights within this ratio of each other


@dataclass
class _Seen:
    first: float
    last: float
    point: np.ndarray                       # (2,) the last anchor
    height: float
    history: collections.deque = field(default_factory=collections.deque)  # (t, x, y) over VELOCITY_S
    ended: dict | None = None               # set when the counting forgot the key: its lines' state then

    def velocity(self) -> np.ndarray:
        """(2,) pixels per second over the last VELOCITY_S seen (0 with one sighting)."""
        t0, x0, y0 = self.history[0]
        dt = self.last - t0
        return np.zeros(2) if dt <= 0 else (self.point - (x0, y0)) / dt


class CountingMemory:
    """``step(keys, points, heights, t) -> {new key: vanished key}`` once per frame; ``end(key, state)`` when
    the counting forgets a key (its lines' state is kept until ``memory_s`` after it was last seen);
    ``last(key)`` what is remembered of a key (its last anchor, height, velocity)."""

    def __init__(self, memory_s: float, radius: float) -> None:
        self.memory_s, self.radius = memory_s, radius
        self.seen: dict[Hashable, _Seen] = {}
        self.consumed: set[Hashable] = set()   # vanished keys already taken over (an identity goes on once)

    @property
    def enabled(self) -> bool:
        return self.memory_s > 0 and self.radius > 0

    def clear(self) -> None:
        self.seen.clear()
        self.consumed.clear()

    def step(self, keys: Sequence[Hashable], points: np.ndarray, boxes: np.ndarray, t: float) -> dict[Hashable, Hashable]:
        """This frame's identities: keys (N,), anchors (N, 2), boxes (N, 4) xyxy at time t. Returns the keys
        seen for the first time that continue a vanished one."""
        heights = boxes[:, 3] - boxes[:, 1]
        born = [k for k in keys if k not in self.seen]
        pairs: dict[Hashable, Hashable] = {}
        if born and self.enabled:
            now = set(keys)
            gone = [k for k, s in self.seen.items() if k not in now and k not in self.consumed
                    and 0 < t - s.last <= self.memory_s]
            where = {k: i for i, k in enumerate(keys)}
            cand = []
            for g in gone:
                s = self.seen[g]
                gap = t - s.last
                guess = s.point + s.velocity() * min(gap, CARRY_S)
                reach = self.radius * s.height
                for b in born:
                    i = where[b]
                    h = float(heights[i])
                    if not (s.height / SIZE_RATIO <= h <= s.height * SIZE_RATIO):
                        continue
                    d = float(np.hypot(*(points[i] - guess)))
                    if d <= reach:
                        cand.append((d / reach, b, g))
            for _d, b, g in sorted(cand, key=lambda c: c[0]):
                if b not in pairs and g not in self.consumed:
                    pairs[b] = g
                    self.consumed.add(g)
        for k, p, h in zip(keys, points, heights):
            one = self.seen.get(k)
            if one is None:
                one = self.seen[k] = _Seen(t, t, np.asarray(p, np.float64).copy(), float(h))
            else:
                one.last, one.point, one.height = t, np.asarray(p, np.float64).copy(), float(h)
            one.history.append((t, float(p[0]), float(p[1])))
            while len(one.history) > 1 and t - one.history[0][0] > VELOCITY_S:
                one.history.popleft()
        # what the counting has forgotten and is past remembering goes (a live stream runs for months)
        for k in [k for k, s in self.seen.items() if s.ended is not None and t - s.last > self.memory_s]:
            del self.seen[k]
            self.consumed.discard(k)
        return pairs

    def last(self, key: Hashable) -> _Seen | None:
        return self.seen.get(key)

    def end(self, key: Hashable, state: dict) -> None:
        """The counting forgot ``key`` (unseen past its buffer); ``state``: its lines' last side and the
        directions it crossed, which a new id taking it over inherits."""
        s = self.seen.get(key)
        if s is not None:
            s.ended = state
