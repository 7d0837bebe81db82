"""``edge-app evaluate-counts --gt gt.txt --tracks tracks.txt --line NAME:x1,y1,x2,y2 [--zone NAME:x,y,...]``:
what the lines and zones count on MOT-format tracks against what the same rule (the runtime's
``analytics.lines`` / ``analytics.counting``, one rule) counts on the ground truth's identities -- the
truth without the repairs of split identities (the counting memory, count_at_start/end: true identities
are whole; a repair could only invent crossings there). Prints one JSON object: per line the tracks' and
the truth's in/out, per zone entries/exits, the summed |count error| as a share of the true crossings
(and entries), and the ratio of track ids to true identities (split identities cross twice; missed ones
never); ``--explain``: every missed and extra crossing with its cause (count_errors.py).

Ground truth: MOTChallenge ``gt.txt`` (MOT16/17: rows with conf 0 and classes other than pedestrian are
left out, as the benchmark does; MOT15: every row). The frame size (for normalised points and the checks)
and rate come from ``seqinfo.ini`` beside gt/ or ``--seqinfo``, else ``--size WxH`` and ``--frame-rate``.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.analytics.counting import Analytics
from edge_app.config.shapes import parse_line, parse_zone
from edge_app.datasets.motchallenge import MotFormatError, MotRows, read_mot, read_seqinfo
from edge_app.config.loader import parse
from edge_app.config.schema import AnalyticsConfig, LineConfig, ZoneConfig
from edge_app.cli.errors import as_flags, bool_arg, fail

PEDESTRIAN = 1


def truth_rows(path: Path) -> MotRows:
    """The ground truth's counted rows: MOT16/17 (9 columns) pedestrians with conf != 0, MOT15 every row.
    Refuses a file without identities (a det.txt given as gt) naming it and its first row."""
    g = read_mot(path, min_columns=7)
    if len(g.ids) and not (g.ids > 0).any():
        first = int(g.line[0]) if g.line is not None else 1
        raise MotFormatError(f"{path}:{first}: no identities (column 2 is {int(g.ids[0])} on every row): "
                             "ground truth names each object with an id >= 1; is this a detections file?")
    keep = g.conf != 0
    if g.extra.shape[1] == 2:  # MOT16/17: class, visibility
        keep &= g.extra[:, 0] == PEDESTRIAN
    keep &= g.ids > 0
    return MotRows(g.frames[keep], g.ids[keep], g.boxes[keep], g.conf[keep], g.extra[keep],
                   None if g.line is None else g.line[keep])


def check_ids(path: Path, rows: MotRows, max_gap: int) -> None:
    """Refuse tracks whose ids are reused: an id twice in one frame, or back after more than ``max_gap``
    frames unseen (another object under the same id would be counted as one), naming file and line."""
    order = np.lexsort((rows.frames, rows.ids))
    ids, frames = rows.ids[order], rows.frames[order]
    lines = rows.line[order] if rows.line is not None else order + 1
    same = ids[1:] == ids[:-1]
    step = frames[1:] - frames[:-1]
    twice = (same & (step == 0)).nonzero()[0]
    if len(twice):
        k = twice[0] + 1
        raise MotFormatError(f"{path}:{int(lines[k])}: id {int(ids[k])} twice in frame {int(frames[k])} "
                             f"(also line {int(lines[k - 1])}): one box per id and frame")
    back = (same & (step > max_gap)).nonzero()[0]
    if len(back):
        k = back[0] + 1
        raise MotFormatError(f"{path}:{int(lines[k])}: id {int(ids[k])} comes back at frame {int(frames[k])} after "
                             f"{int(step[k - 1]) - 1} frames unseen (last at frame {int(frames[k - 1])}); more than "
                             f"--max-gap-s allows ({max_gap} frames): an id reused for another object would be "
                             "counted as one (raise --max-gap-s if the tracker really keeps ids that long)")


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def evaluate_counts(gt: str | Path, tracks: str | Path, lines: list[LineConfig], zones: list[ZoneConfig],
                    width: int, height: int, frame_rate: float = 30.0, max_gap_s: float = 10.0,
                    anchor: str = "bottom_center", rule: AnalyticsConfig | None = None) -> dict[str, Any]:
    """Counts of ``tracks`` vs ``gt`` on the lines and zones (pixels of width x height, or normalised).
    rule: the counting settings besides the shapes (the counting memory, count_at_end; default: the
    runtime's defaults, ``[analytics]``)."""
    gt, tracks = Path(gt), Path(tracks)
    g = truth_rows(gt)
    tr = read_mot(tracks)
    max_gap = max(1, int(round(max_gap_s * frame_rate)))
    check_ids(tracks, tr, max_gap)
    cfg = replace(rule or AnalyticsConfig(), anchor=anchor, lines=tuple(lines), zones=tuple(zones))
    # An identity unseen for longer than the allowed gap is gone (its zone visit ends), as live.
    an = Analytics(cfg, {}, width, height, forget_s=max_gap / frame_rate)
    last = max(g.frame_range()[1], tr.frame_range()[1], 0)
    gs = np.searchsorted(g.frames, np.arange(1, last + 2))
    ts = np.searchsorted(tr.frames, np.arange(1, last + 2))
    classes = ("person",)
    for f in range(1, last + 1):
        t = (f - 1) / frame_rate
        a, b = ts[f - 1], ts[f]
        an.count(_xyxy(tr.boxes[a:b]), tr.ids[a:b], np.zeros(b - a, np.int64), classes, t)
        a, b = gs[f - 1], gs[f]
        an.count(_xyxy(g.boxes[a:b]), g.ids[a:b], np.zeros(b - a, np.int64), classes, t, truth=True)
    an.end_of_stream()
    snap = an.snapshot()
    out_lines, err, true_total = {}, 0, 0
    for name, l in snap["lines"].items():
        got = {"in": l["total_in"], "out": l["total_out"], "truth_in": l.get("truth_in", 0),
               "truth_out": l.get("truth_out", 0)}
        got["error"] = abs(got["in"] - got["truth_in"]) + abs(got["out"] - got["truth_out"])
        err += got["error"]
        true_total += got["truth_in"] + got["truth_out"]
        out_lines[name] = got
    out_zones, zerr, ztrue = {}, 0, 0
    for z, tz in zip(an.zones, an.truth_zones):
        got = {"entries": sum(z.entries.values()), "exits": sum(z.exits.values()), "inside_at_end": len(z.inside),
               "truth_entries": sum(tz.entries.values()), "truth_exits": sum(tz.exits.values()),
               "truth_inside_at_end": len(tz.inside)}
        got["error"] = abs(got["entries"] - got["truth_entries"])
        zerr += got["error"]
        ztrue += got["truth_entries"]
        out_zones[z.name] = got
    true_ids, track_ids = len(np.unique(g.ids)), len(np.unique(tr.ids))
    return {"lines": out_lines, "zones": out_zones,
            "line_count_error": err / true_total if true_total else None, "true_crossings": true_total,
            "zone_entry_error": zerr / ztrue if ztrue else None, "true_entries": ztrue,
            "track_ids": track_ids, "true_ids": true_ids, "id_ratio": track_ids / true_ids if true_ids else None,
            "frames": last, "frame_rate": frame_rate, "size": [width, height], "anchor": anchor}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app evaluate-counts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, type=Path, help="MOTChallenge gt.txt (with identities)")
    p.add_argument("--tracks", required=True, type=Path, help="MOT-format tracks (edge-app track --out)")
    p.add_argument("--line", action="append", default=[], metavar="NAME:x1,y1,x2,y2",
                   help="a counting line, pixels or 0..1 of the frame (repeatable); 'in' = toward the left "
                        "of the direction from the first point to the second")
    p.add_argument("--zone", action="append", default=[], metavar="NAME:x1,y1,x2,y2,x3,y3,...",
                   help="a zone polygon, pixels or 0..1 (repeatable)")
    p.add_argument("--seqinfo", type=Path, help="seqinfo.ini (default: beside gt/): frame size and rate")
    p.add_argument("--size", help="WxH frame size when there is no seqinfo.ini")
    p.add_argument("--frame-rate", type=float, help="frames per second (default: seqinfo's, else 30)")
    p.add_argument("--max-gap-s", type=float, default=10.0,
                   help="an id unseen longer than this is refused as reused (default 10 s)")
    p.add_argument("--anchor", default="bottom_center", choices=("bottom_center", "center", "top_center"))
    d = AnalyticsConfig()
    p.add_argument("--memory-s", type=float, default=d.memory_s, help="the counting memory (as [analytics] "
                   f"memory_s; default {d.memory_s}): a new id continuing a vanished one keeps its sides of the lines")
    p.add_argument("--memory-radius", type=float, default=d.memory_radius,
                   help=f"... within this many box heights of where it vanished (default {d.memory_radius})")
    p.add_argument("--count-at-start", type=bool_arg, default=d.count_at_start, metavar="BOOL",
                   help=f"as [analytics] count_at_start (default {d.count_at_start})")
    p.add_argument("--count-at-end", type=bool_arg, default=d.count_at_end, metavar="BOOL",
                   help=f"as [analytics] count_at_end (default {d.count_at_end})")
    p.add_argument("--explain", action="store_true", help="also where the line count error comes from: every "
                   "missed and extra crossing with its cause (calibration/count_errors.py)")
    a = p.parse_args(argv)
    try:
        info_path = a.seqinfo or a.gt.parent.parent / "seqinfo.ini"
        info = read_seqinfo(info_path) if info_path.is_file() else None
        if a.size:
            try:
                width, height = (int(v) for v in a.size.lower().split("x"))
            except ValueError:
                raise ValueError(f"--size {a.size!r}: expected WxH, e.g. 1920x1080") from None
        elif info is not None and info.width and info.height:
            width, height = info.width, info.height
        else:
            raise ValueError(f"the frame size: no {info_path} with imWidth/imHeight; give --seqinfo or --size WxH")
        if not a.line and not a.zone:
            raise ValueError("nothing to count: give at least one --line or --zone")
        where = "--size" if a.size else str(info_path)
        lines = [parse_line(v, width, height, frame_from=where) for v in a.line]
        zones = [parse_zone(v, width, height, frame_from=where) for v in a.zone]
        rate = a.frame_rate or (info.frame_rate if info else 30.0)
        if not a.max_gap_s > 0:
            raise ValueError(f"--max-gap-s {a.max_gap_s}: expected a number of seconds above 0")
        # the counting rule, checked by the config's own rules ([analytics]): a negative memory is refused
        rule, problems = parse(AnalyticsConfig, {"anchor": a.anchor, "memory_s": a.memory_s,
                                                 "memory_radius": a.memory_radius, "count_at_start": a.count_at_start,
                                                 "count_at_end": a.count_at_end})
        if problems:
            raise ValueError(as_flags(problems))
        result = evaluate_counts(a.gt, a.tracks, lines, zones, width, height, rate, a.max_gap_s, a.anchor, rule)
        if a.explain and lines:
            from .count_errors import decompose_files
            result["explain"] = decompose_files(a.gt, a.tracks, lines, width, height, rate, a.max_gap_s, rule)
    except (MotFormatError, ValueError) as exc:
        return fail("evaluate-counts", f"{exc}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
