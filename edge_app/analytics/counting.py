"""Lines and zones counted on confirmed tracks, per stream (``Analytics`` runs the trackers too).

Lines: the rule of ``lines.py`` (once per identity and direction, through the segment, hysteresis), with
the counting memory of ``memory.py`` for tracks (a new id continuing a vanished one keeps its sides).
Zones: occupancy now, entries, exits and dwell time per class; a track that disappears inside (lost past
the tracker's buffer) is counted as an exit then.
A stream that starts again (a file looping: time goes back) resets the trackers; counts are kept.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config.schema import AnalyticsConfig, TrackerConfig
from ..core.types import Tracks
from ..core import geometry
from . import lines as line_rule
from .lines import Line as _Line
from .memory import CountingMemory
from .tracker import Tracker

Key = tuple[str, int]  # (detector model, track id)


@dataclass
class _Zone:
    name: str
    polygon: np.ndarray
    classes: frozenset[str]
    model: str
    margin: float = 0.1                 # share of the box height (hysteresis)
    settle_s: float = 1.0
    border: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # edges along the frame's border
    inside: dict[Key, tuple[float, str]] = field(default_factory=dict)  # entered at, class
    other_side: dict[Key, float] = field(default_factory=dict)  # since when on the other side (not yet past the margin)
    entries: collections.Counter[str] = field(default_factory=collections.Counter)
    exits: collections.Counter[str] = field(default_factory=collections.Counter)
    dwell: list[float] = field(default_factory=list)  # completed visits (s), the last 1000


class Analytics:
    """Trackers of the tracked detectors, and the stream's lines and zones.

    trackers: {detector model name: its TrackerConfig (enabled)}; width, height: the frame size the
    config's pixel coordinates refer to (source.width x source.height)."""

    def __init__(self, cfg: AnalyticsConfig, trackers: dict[str, TrackerConfig], width: int, height: int,
                 track_update_s: float = 0.0, groups: dict[str, Any] | None = None,
                 class_groups: dict[str, tuple[str, ...]] | None = None, forget_s: float | None = None) -> None:
        """track_update_s: a ``track_update`` event per live track this often (0 = none); groups: {detector:
        (C,) class group ids} for its tracker; class_groups: {group name: its classes}, so that a line or
        zone naming a group counts its classes (one vehicle seen as car and truck is one track, counted once);
        forget_s: an identity unseen this long is gone (default: its tracker's lost buffer; tracks read from
        a file have no tracker, so evaluate-counts gives it)."""
        self.width, self.height = width, height
        self.forget_s = forget_s
        self.cfg = cfg
        self.track_update_s = track_update_s
        self.record_events = False                   # set when an event bus listens (events/device.py)
        self._pending: list[dict[str, Any]] = []     # events since the last drain_events()
        self._tracks: dict[Key, dict[str, Any]] = {}  # per live track: first/last seen, best detection
        self.trackers = {name: Tracker(t, (groups or {}).get(name)) for name, t in trackers.items()}
        self._expand = class_groups or {}
        self.lost_s = {name: t.lost_s for name, t in trackers.items()}
        self.lines, self.zones = self._geometry(cfg, width, height)
        # The same lines and zones counted on the labels' true identities (synthetic scenes, MOT
        # sequences): the counts the stream should have given, beside the ones the tracks gave.
        self.truth_lines = [_Line(l.name, l.a, l.b, l.classes, "", l.margin) for l in self.lines]
        self.truth_zones = [_Zone(z.name, z.polygon, z.classes, "", z.margin, z.settle_s, z.border) for z in self.zones]
        self._truth_seen: dict[Key, float] = {}
        # The repairs of split identities (the counting memory, memory.py; count_at_end) are for tracks:
        # the truth's identities are whole, and counted by the rule alone (a repair applied to them could
        # only invent crossings, and would hide the same mistakes made on the tracks).
        self.memory = CountingMemory(cfg.memory_s, cfg.memory_radius)
        self.truth_memory = CountingMemory(0.0, 0.0)
        self.truth_frames = 0
        self._trails: dict[Key, collections.deque[tuple[float, float, float]]] = {}
        self._seen: dict[Key, float] = {}
        self._names: dict[Key, str] = {}             # each live identity's class (a crossing counted at its end)
        self._t: float | None = None
        self._lock = threading.Lock()
        self.restarts = 0

    @property
    def enabled(self) -> bool:
        return bool(self.trackers)

    def _named(self, classes: tuple[str, ...]) -> frozenset[str]:
        """Classes counted: those named, a class group standing for its classes."""
        return frozenset(c for name in classes for c in (name, *self._expand.get(name, ())))

    def _geometry(self, cfg: AnalyticsConfig, width: int, height: int) -> tuple[list[_Line], list[_Zone]]:
        lines = []
        for l in cfg.lines:
            a, b = geometry.to_pixels(l.points, l.units, width, height)
            lines.append(_Line(l.name, a, b, self._named(l.classes), l.model, l.margin))
        zones = []
        for z in cfg.zones:
            poly = geometry.to_pixels(z.points, z.units, width, height)
            zones.append(_Zone(z.name, poly, self._named(z.classes), z.model, z.margin, z.settle_s,
                               geometry.on_frame_border(poly, width, height)))
        return lines, zones

    def set_geometry(self, cfg: AnalyticsConfig, width: int, height: int) -> None:
        """New lines and zones from the next frame on (the page's editor): one whose name and definition
        are unchanged keeps its counts and state; the tracks, their ids and trails go on."""
        with self._lock:
            lines, zones = self._geometry(cfg, width, height)

            def same(a: Any, b: Any) -> bool:
                pa = (a.a, a.b) if isinstance(a, _Line) else (a.polygon,)
                pb = (b.a, b.b) if isinstance(b, _Line) else (b.polygon,)
                return (a.name, a.classes, a.model, a.margin) == (b.name, b.classes, b.model, b.margin) and all(
                    x.shape == y.shape and np.allclose(x, y) for x, y in zip(pa, pb))

            def carry(new: list[Any], old: list[Any], truth: list[Any], make: Any) -> tuple[list[Any], list[Any]]:
                kept, kept_truth = [], []
                for item in new:
                    i = next((k for k, o in enumerate(old) if same(o, item)), None)
                    kept.append(old[i] if i is not None else item)
                    kept_truth.append(truth[i] if i is not None else make(item))
                return kept, kept_truth

            self.lines, self.truth_lines = carry(lines, self.lines, self.truth_lines,
                                                 lambda l: _Line(l.name, l.a, l.b, l.classes, "", l.margin))
            self.zones, self.truth_zones = carry(zones, self.zones, self.truth_zones,
                                                 lambda z: _Zone(z.name, z.polygon, z.classes, "", z.margin,
                                                                 z.settle_s, z.border))
            self.cfg = cfg

    def drain_events(self) -> list[dict[str, Any]]:
        """Events since the last call: dicts with ``kind`` and the event's fields, and ``snapshot`` =
        (frame, box) for track events (the bus turns them into schema events and JPEGs)."""
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def _event(self, kind: str, **fields: Any) -> None:
        if self.record_events:  # nobody listening: nothing kept (the frames of snapshots least of all)
            self._pending.append({"kind": kind, **fields})

    def update(self, results: list[Any], t: float, image: np.ndarray | None = None) -> dict[str, Tracks]:
        """Track each tracked detector's detections of this frame and count; returns {detector: its
        confirmed tracks}, beside the model results (never written into them). ``image``: the frame, kept
        for the best-scoring moment of each track (its snapshot)."""
        frame = image                                # the tracker's (camera motion, appearance)
        image = image if self.record_events else None
        with self._lock:
            if self._t is not None and t < self._t:  # the stream started again (a looping file)
                for tracker in self.trackers.values():
                    tracker.reset()
                self._trails.clear()
                self._end_lines(self._seen, self.memory, self.lines, trails=True, last=self._t)
                for key in list(self._seen):
                    self._end_track(key, self._t)
                self._seen.clear()
                self._names.clear()
                for line in self.lines + self.truth_lines:
                    line.last.clear()
                    line.counted.clear()
                for zone in self.zones + self.truth_zones:
                    zone.inside.clear()
                    zone.other_side.clear()
                self._truth_seen.clear()
                self.memory.clear()
                self.truth_memory.clear()
                self.restarts += 1
            self._t = t
            out: dict[str, Tracks] = {}
            for r in results:
                if r.name not in self.trackers or r.detections is None:
                    continue
                tracks = out[r.name] = self.trackers[r.name].update(r.detections, t, frame)
                self._follow(r.name, tracks, r.classes, t, image)
                self._count(r.name, tracks.boxes, tracks.ids, tracks.classes, r.classes, t,
                            self.lines, self.zones, trails=True)
            self._forget(t, self._seen, self.lines, self.zones, trails=True)
            return out

    def end_of_stream(self) -> None:
        """The recording ended: every identity still remembered ends now, for the lines (count_at_end);
        zone occupancy stays as it was at the last frame."""
        with self._lock:
            self._end_lines(self._seen, self.memory, self.lines, trails=True, last=self._t)

    def _end_lines(self, seen: dict[Key, float], memory: CountingMemory, lines: list[_Line], trails: bool,
                   last: float | None = None) -> None:
        """count_at_end for the identities that had vanished (those still seen at ``last`` have not ended)."""
        if self.cfg.count_at_end and trails:
            for key, t in list(seen.items()):
                if last is None or t < last:
                    self._at_end(key, memory, lines, trails)

    def update_truth(self, labels: Any, t: float) -> None:
        """Count the frame's labelled objects by their true identities (``FrameLabels.ids``)."""
        if labels is None or labels.ids is None or labels.truth is None or not (self.lines or self.zones):
            return
        with self._lock:
            self.truth_frames += 1
            self._count("truth", labels.truth.boxes, labels.ids, labels.truth.classes, labels.classes, t,
                        self.truth_lines, self.truth_zones, trails=False)
            self._forget(t, self._truth_seen, self.truth_lines, self.truth_zones, trails=False)

    def count(self, boxes: np.ndarray, ids: np.ndarray, class_ids: np.ndarray, classes: tuple[str, ...],
              t: float, truth: bool = False) -> None:
        """Count one frame of identities read from elsewhere (a tracks file, or the ground truth when
        ``truth``) on the lines and zones, by the same rule as live: boxes (N, 4) xyxy, ids (N,),
        class_ids (N,) indices into ``classes``."""
        with self._lock:
            if truth:
                self.truth_frames += 1
                self._count("truth", boxes, ids, class_ids, classes, t, self.truth_lines, self.truth_zones, trails=False)
                self._forget(t, self._truth_seen, self.truth_lines, self.truth_zones, trails=False)
            else:
                self._t = t
                self._count("file", boxes, ids, class_ids, classes, t, self.lines, self.zones, trails=True)
                self._forget(t, self._seen, self.lines, self.zones, trails=True)

    def _follow(self, model: str, tracks: Any, classes: tuple[str, ...], t: float, image: np.ndarray | None) -> None:
        """track_new at a track's first confirmed frame, its best detection kept, track_update events."""
        for box, tid, cls, score in zip(tracks.boxes, tracks.ids.tolist(), tracks.classes.tolist(),
                                        tracks.scores.tolist()):
            key = (model, tid)
            info = self._tracks.get(key)
            name = classes[cls] if 0 <= cls < len(classes) else str(cls)
            if info is None:
                info = self._tracks[key] = {"first": t, "last_update": t, "model": model, "class": name,
                                            "score": score, "box": box.copy(), "image": image}
                self._event("track_new", model=model, track_id=tid, **{"class": name}, score=round(score, 4),
                            box=[round(float(v), 1) for v in box], snapshot=(image, box.copy()) if image is not None else None)
            elif score > info["score"]:
                info.update(score=score, box=box.copy(), image=image if image is not None else info["image"], **{"class": name})
            if self.track_update_s and t - info["last_update"] >= self.track_update_s:
                info["last_update"] = t
                self._event("track_update", model=model, track_id=tid, **{"class": info["class"]},
                            score=round(info["score"], 4), box=[round(float(v), 1) for v in box],
                            duration_s=round(t - info["first"], 3))

    def _end_track(self, key: Key, t: float | None) -> None:
        info = self._tracks.pop(key, None)
        if info is None:
            return
        snap = (info["image"], info["box"]) if info["image"] is not None else None
        self._event("track_end", model=info["model"], track_id=key[1], **{"class": info["class"]},
                    score=round(info["score"], 4), box=[round(float(v), 1) for v in info["box"]],
                    duration_s=round((t or info["first"]) - info["first"], 3), snapshot=snap)

    def _count(self, model: str, boxes: np.ndarray, ids: np.ndarray, class_ids: np.ndarray,
               classes: tuple[str, ...], t: float, lines: list[_Line], zones: list[_Zone], trails: bool) -> None:
        if not len(ids):
            return
        points = geometry.anchor_points(boxes, self.cfg.anchor)
        names = [classes[c] if 0 <= c < len(classes) else str(c) for c in np.asarray(class_ids).tolist()]
        keys = [(model, int(i)) for i in np.asarray(ids).tolist()]
        seen = self._seen if trails else self._truth_seen
        for key, p, name in zip(keys, points, names):
            seen[key] = t
            self._names[key] = name
            if not trails:
                continue
            trail = self._trails.setdefault(key, collections.deque())
            trail.append((t, float(p[0]), float(p[1])))
            while trail and t - trail[0][0] > self.cfg.trail_s:
                trail.popleft()
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        heights = boxes[:, 3] - boxes[:, 1]
        memory = self.memory if trails else self.truth_memory
        for new, old in memory.step(keys, points, boxes, t).items():
            seen_old = memory.last(old)
            line_rule.inherit(lines, new, old, seen_old.ended if seen_old is not None else None)
        crossed = line_rule.step(lines, model, keys, points, heights, names, start=self.cfg.count_at_start and trails)
        self._crossed(crossed, trails)
        for zone in zones:
            if zone.model and zone.model != model:
                continue
            # Hysteresis: a track's state flips only once its anchor is past the boundary by the margin
            # (a share of its height, so near and far objects alike), or has stayed on the other side for
            # settle_s: a person standing on the edge, whose feet jitter across it, neither enters nor leaves.
            deep = geometry.depth(points, zone.polygon, zone.border, self.width, self.height)
            for key, d, h, name in zip(keys, deep, heights, names):
                if zone.classes and name not in zone.classes:
                    continue
                was_in = key in zone.inside
                if (d > 0) == was_in:  # on its own side: nothing pending
                    zone.other_side.pop(key, None)
                    continue
                since = zone.other_side.setdefault(key, t)
                settled = zone.settle_s > 0 and t - since >= zone.settle_s
                if abs(d) < zone.margin * h and not settled:
                    continue
                zone.other_side.pop(key, None)
                if not was_in:
                    zone.inside[key] = (t, name)
                    zone.entries[name] += 1
                    if trails:
                        self._event("zone_entered", zone=zone.name, model=model, track_id=key[1], **{"class": name})
                else:
                    dwell = self._exit(zone, key, t)
                    if trails:
                        self._event("zone_left", zone=zone.name, model=model, track_id=key[1], **{"class": name},
                                    dwell_s=round(dwell, 3))

    def _crossed(self, crossed: list[Any], trails: bool) -> None:
        if trails:  # the tracks' counts are events; the truth's are not
            for line, key, direction, name, p in crossed:
                self._event("line_crossed", line=line.name, direction=direction, model=key[0], track_id=key[1],
                            **{"class": name}, point=[round(float(v), 1) for v in p])

    def _at_end(self, key: Key, memory: CountingMemory, lines: list[_Line], trails: bool) -> None:
        """count_at_end (lines.at_end) for an identity that ended."""
        seen = memory.last(key)
        if seen is not None:
            self._crossed(line_rule.at_end(lines, key, key[0], self._names.get(key, ""), seen.point,
                                           seen.velocity()), trails)

    @staticmethod
    def _exit(zone: _Zone, key: Key, t: float) -> float:
        entered, name = zone.inside.pop(key)
        zone.exits[name] += 1
        zone.dwell.append(t - entered)
        del zone.dwell[:-1000]
        return t - entered

    def _forget(self, t: float, seen: dict[Key, float], lines: list[_Line], zones: list[_Zone],
                trails: bool) -> None:
        """Tracks the tracker has ended (not seen for longer than its buffer): trails go, zone visits end.
        Truth identities are forgotten after the longest tracker buffer."""
        longest = max(self.lost_s.values(), default=0.0) if self.forget_s is None else self.forget_s
        gone = [k for k, last in seen.items()
                if t - last > (self.lost_s.get(k[0], longest) if self.forget_s is None else self.forget_s)]
        memory = self.memory if trails else self.truth_memory
        for key in gone:
            del seen[key]
            if trails:
                self._trails.pop(key, None)
                self._end_track(key, t)
            if self.cfg.count_at_end and trails:
                self._at_end(key, memory, lines, trails)
            self._names.pop(key, None)
            memory.end(key, {line.name: line.state(key) for line in lines})
            for line in lines:
                line.last.pop(key, None)
            for zone in zones:
                zone.other_side.pop(key, None)
                if key in zone.inside:
                    entered_name = zone.inside[key][1]
                    dwell = self._exit(zone, key, t)
                    if trails:
                        self._event("zone_left", zone=zone.name, model=key[0], track_id=key[1],
                                    **{"class": entered_name}, dwell_s=round(dwell, 3), unseen=True)

    # -- reading -------------------------------------------------------------------------------------
    def trails(self) -> dict[Key, np.ndarray]:
        """(model, id) -> (K, 2) recent anchor points, oldest first (the overlay draws them)."""
        with self._lock:
            return {k: np.array([(x, y) for _, x, y in v]) for k, v in self._trails.items() if len(v) > 1}

    def geometry(self) -> dict[str, Any]:
        """Lines and zones in pixels with their current numbers (the overlay labels them)."""
        with self._lock:
            return {"lines": [(l.name, l.a, l.b, sum(l.counts["in"].values()), sum(l.counts["out"].values()))
                              for l in self.lines],
                    "zones": [(z.name, z.polygon, len(z.inside)) for z in self.zones]}

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """JSON-ready: per line in/out by class, per zone occupancy/entries/exits/dwell, per tracker state."""
        with self._lock:
            t = self._t if now is None else now
            lines = {}
            for l, truth in zip(self.lines, self.truth_lines):
                lines[l.name] = {"in": dict(l.counts["in"]), "out": dict(l.counts["out"]),
                                 "total_in": sum(l.counts["in"].values()), "total_out": sum(l.counts["out"].values())}
                if self.truth_frames:
                    lines[l.name]["truth_in"] = sum(truth.counts["in"].values())
                    lines[l.name]["truth_out"] = sum(truth.counts["out"].values())
            zones = {}
            for z in self.zones:
                occupancy = collections.Counter(name for _, name in z.inside.values())
                current = [t - entered for entered, _ in z.inside.values()] if t is not None else []
                zones[z.name] = {"occupancy": dict(occupancy), "total": len(z.inside), "entries": dict(z.entries),
                                 "exits": dict(z.exits), "dwell_mean_s": round(float(np.mean(z.dwell)), 3) if z.dwell else None,
                                 "dwell_max_now_s": round(max(current), 3) if current else None}
            for z, tz in zip(self.zones, self.truth_zones):
                if self.truth_frames:
                    zones[z.name]["truth_total"] = len(tz.inside)
                    zones[z.name]["truth_entries"] = sum(tz.entries.values())
            trackers = {name: tr.counts() for name, tr in self.trackers.items()}
            return {"lines": lines, "zones": zones, "trackers": trackers, "restarts": self.restarts}
