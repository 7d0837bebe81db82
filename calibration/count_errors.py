"""Where a line count goes wrong: every crossing the truth made that the tracks missed, and every crossing
the tracks made that the truth did not, each put down to one cause (``evaluate-counts --explain``, and the
tracking benchmark's decomposition table).

The count error of a line is net (|in - truth_in| + |out - truth_out|): a missed crossing and an extra one
in the same direction cancel. Here they are taken apart. Tracks are tied to true identities frame by frame
(a one-to-one assignment of boxes at IoU >= 0.5, the CLEAR-MOT criterion); a track's crossing belongs to the
identity it covered most around that frame, and is matched to that identity's true crossing of the same
line and direction (each identity crosses a line at most once per direction under the rule).

Misses (a true crossing no track counted), by cause:
- ``never_tracked``: no track ever covered that identity (missed by the detector or never confirmed);
- ``hysteresis``: a track of that identity crossed, but not past the line's margin (counted at margin 0);
- ``fragmented_hidden`` / ``fragmented_visible``: the identity was tracked on both sides, by different
  ids (the track was lost and the person came back under a new one), and at the crossing the person was
  hidden (visibility < 0.25, where the ground truth gives it) / visible or unknown;
- ``one_side_only``: tracked before or after the crossing only (a track that ended at the line, or was
  confirmed past it);
- ``same_track_not_counted``: one id on both sides, no count (its box and the truth's fall on different
  sides, or that id had already crossed that way).
Extras (a crossing the truth did not make), by cause:
- ``false_track``: the track covers no true identity there;
- ``double_count``: that identity's crossing was already counted by another id (an id split or switch);
- ``id_switch``: the identity under the track did not cross that way (the id jumped between people, or the
  box jumped).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core import geometry
from edge_app.analytics.counting import Analytics
from edge_app.datasets.motchallenge import MotRows
from edge_app.config.schema import AnalyticsConfig, LineConfig

MISS_CAUSES = ("never_tracked", "hysteresis", "fragmented_hidden", "fragmented_visible", "one_side_only",
               "same_track_not_counted")
EXTRA_CAUSES = ("false_track", "double_count", "id_switch")
HIDDEN = 0.25   # visibility below this: the person is (nearly) fully hidden
Event = tuple[int, int, str, str]  # frame, id, line, direction


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def crossings(rows: MotRows, lines: list[LineConfig], width: int, height: int, frame_rate: float,
              forget_s: float, rule: AnalyticsConfig | None = None) -> list[Event]:
    """Every counted crossing of MOT rows under the runtime's rule (``analytics.counting``; ``rule``: its
    settings besides the lines), with its frame: [(frame, id, line, direction)]."""
    an = Analytics(replace(rule or AnalyticsConfig(), lines=tuple(lines), zones=()), {}, width, height,
                   forget_s=forget_s)
    an.record_events = True
    out: list[Event] = []
    last = rows.frame_range()[1]
    starts = np.searchsorted(rows.frames, np.arange(1, last + 2))

    def take(f: int) -> None:
        out.extend((f, int(e["track_id"]), e["line"], e["direction"]) for e in an.drain_events()
                   if e["kind"] == "line_crossed")
    for f in range(1, last + 1):
        a, b = starts[f - 1], starts[f]
        an.count(_xyxy(rows.boxes[a:b]), rows.ids[a:b], np.zeros(b - a, np.int64), ("person",), (f - 1) / frame_rate)
        take(f)
    an.end_of_stream()
    take(last)
    return out


def frame_matches(gt: MotRows, tracks: MotRows, threshold: float = 0.5) -> dict[tuple[int, int], int]:
    """{(frame, track id): true id} from a one-to-one assignment of the frame's boxes at IoU >= threshold."""
    from scipy.optimize import linear_sum_assignment

    from edge_app.analytics.association import overlaps
    out: dict[tuple[int, int], int] = {}
    last = max(gt.frame_range()[1], tracks.frame_range()[1])
    gs = np.searchsorted(gt.frames, np.arange(1, last + 2))
    ts = np.searchsorted(tracks.frames, np.arange(1, last + 2))
    for f in range(1, last + 1):
        ga, gb, ta, tb = gs[f - 1], gs[f], ts[f - 1], ts[f]
        if ga == gb or ta == tb:
            continue
        r, c, iou = overlaps(_xyxy(tracks.boxes[ta:tb]), _xyxy(gt.boxes[ga:gb]))
        ok = iou >= threshold
        if not ok.any():
            continue
        cost = np.full((tb - ta, gb - ga), 2.0)
        cost[r[ok], c[ok]] = 1.0 - iou[ok]
        rr, cc = linear_sum_assignment(cost)
        for i, j in zip(rr, cc):
            if cost[i, j] < 2.0:
                out[(f, int(tracks.ids[ta + i]))] = int(gt.ids[ga + j])
    return out


def _identity(match: dict[tuple[int, int], int], frames_of: dict[int, np.ndarray], tid: int, f: int,
              window: int) -> int | None:
    """The true identity a track covered most within ``window`` frames of frame f (None: none)."""
    fr = frames_of.get(tid, np.zeros(0, np.int64))
    near = fr[np.abs(fr - f) <= window]
    votes = Counter(match[(int(x), tid)] for x in near if (int(x), tid) in match)
    return votes.most_common(1)[0][0] if votes else None


def decompose(gt: MotRows, tracks: MotRows, lines: list[LineConfig], width: int, height: int, frame_rate: float,
              forget_s: float, rule: AnalyticsConfig | None = None) -> dict[str, Any]:
    """Misses and extras of the tracks' line counts against the truth's, by cause (module doc). Returns
    {"misses": {cause: n}, "extras": {cause: n}, "error": summed |count error| (as evaluate-counts),
    "true_crossings": n, "events": [...]} -- every miss and extra with its frame, id, line and direction."""
    # the truth as evaluate-counts counts it: by the rule alone, its whole identities need no repair
    bare = replace(rule or AnalyticsConfig(), memory_s=0.0, count_at_start=False, count_at_end=False)
    truth = crossings(gt, lines, width, height, frame_rate, forget_s, bare)
    ours = crossings(tracks, lines, width, height, frame_rate, forget_s, rule)
    loose = crossings(tracks, [replace(l, margin=0.0) for l in lines], width, height, frame_rate, forget_s, rule)
    match = frame_matches(gt, tracks)
    window = max(1, int(round(0.5 * frame_rate)))
    frames_of = {int(t): tracks.frames[tracks.ids == t] for t in np.unique(tracks.ids)}
    covered: dict[int, list[tuple[int, int]]] = defaultdict(list)  # true id -> [(frame, track id)]
    for (f, tid), gid in match.items():
        covered[gid].append((f, tid))
    for v in covered.values():
        v.sort()
    vis = gt.extra[:, 1] if gt.extra.shape[1] == 2 else np.full(len(gt.ids), np.nan)  # MOT15: none
    boxes = _xyxy(gt.boxes)
    of_id = {int(i): (gt.frames[gt.ids == i], boxes[gt.ids == i], vis[gt.ids == i]) for i in np.unique(gt.ids)}
    by_name = {l.name: l for l in lines}

    who = [(_identity(match, frames_of, tid, f, window), f, tid, line, d) for f, tid, line, d in ours]
    taken = [False] * len(who)
    misses: list[dict[str, Any]] = []
    matched_truth = 0
    for f, gid, line, d in truth:
        cand = [k for k, (g, tf, _t, tl, td) in enumerate(who) if not taken[k] and g == gid and tl == line and td == d]
        if cand:
            taken[min(cand, key=lambda k: abs(who[k][1] - f))] = True
            matched_truth += 1
            continue
        misses.append({"frame": f, "true_id": gid, "line": line, "direction": d,
                       "cause": _miss_cause(gid, f, by_name[line], d, of_id[gid], covered, loose, match,
                                            frames_of, window, width, height, (rule or AnalyticsConfig()).anchor)})
    extras: list[dict[str, Any]] = []
    truth_keys = {(g, l, d) for _f, g, l, d in truth}
    for k, (owner, tf, tid, line, d) in enumerate(who):
        if taken[k]:
            continue
        cause = "false_track" if owner is None else "double_count" if (owner, line, d) in truth_keys else "id_switch"
        extras.append({"frame": tf, "track_id": tid, "true_id": owner, "line": line, "direction": d, "cause": cause})
    net: Counter[tuple[str, str]] = Counter()
    for e in extras:
        net[(e["line"], e["direction"])] += 1
    for m in misses:
        net[(m["line"], m["direction"])] -= 1
    return {"misses": {c: sum(m["cause"] == c for m in misses) for c in MISS_CAUSES},
            "extras": {c: sum(e["cause"] == c for e in extras) for c in EXTRA_CAUSES},
            "matched": matched_truth, "error": int(sum(abs(v) for v in net.values())), "true_crossings": len(truth),
            "counted": len(ours), "events": misses + extras}


def _miss_cause(gid: int, f: int, line: LineConfig, d: str, truth_rows: tuple[np.ndarray, np.ndarray, np.ndarray],
                covered: dict[int, list[tuple[int, int]]], loose: list[Event], match: dict[tuple[int, int], int],
                frames_of: dict[int, np.ndarray], window: int, width: int, height: int, anchor: str) -> str:
    """The cause of one missed true crossing (module doc). truth_rows: the identity's (frames, xyxy boxes,
    visibility or NaN) sorted by frame."""
    spans = covered.get(gid)
    if not spans:
        return "never_tracked"
    frames, boxes, vis = truth_rows
    a, b = geometry.to_pixels(line.points, line.units, width, height)
    p = geometry.anchor_points(boxes, anchor)
    s = geometry.side(p, a, b)
    clear = geometry.line_distance(p, a, b) >= line.margin * (boxes[:, 3] - boxes[:, 1])
    new = -1.0 if d == "in" else 1.0
    old = (frames < f) & (s == -new) & clear
    f0 = int(frames[old].max()) if old.any() else f  # the last frame it was clearly on the side it came from
    before = [tid for fr, tid in spans if fr <= f0]
    after = [tid for fr, tid in spans if fr >= f]
    if not before or not after:
        return "one_side_only"
    tb, ta = before[-1], after[0]
    if tb == ta:
        return "same_track_not_counted"
    for lf, tid, ll, ld in loose:
        if ll == line.name and ld == d and tid in (tb, ta) and _identity(match, frames_of, tid, lf, window) == gid:
            return "hysteresis"  # the old id crossed the line itself but was lost before it was past the margin
    fb = max(fr for fr, tid in spans if fr <= f0)
    fa = min(fr for fr, tid in spans if fr >= f)
    gap = vis[(frames > fb) & (frames < fa)]
    hidden = len(gap) and not np.isnan(gap).all() and float(np.nanmedian(gap)) < HIDDEN
    return "fragmented_hidden" if hidden else "fragmented_visible"


def decompose_files(gt: str | Path, tracks: str | Path, lines: list[LineConfig], width: int, height: int,
                    frame_rate: float, max_gap_s: float = 10.0, rule: AnalyticsConfig | None = None) -> dict[str, Any]:
    """decompose() on a ground truth and a tracks file (the rows evaluate-counts reads)."""
    from edge_app.datasets.motchallenge import read_mot

    from .counts import truth_rows
    return decompose(truth_rows(Path(gt)), read_mot(Path(tracks)), lines, width, height, frame_rate, max_gap_s, rule)
