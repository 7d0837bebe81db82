"""``edge-app track --detections det.txt [--seqinfo seqinfo.ini] --out tracks.txt``: the runtime's tracker
(``analytics.tracker``, the same code the live pipeline runs) over MOTChallenge detections, written as
MOT tracks (``edge-app evaluate-tracks`` scores them). Time comes from the sequence's frame rate, so the
lost buffer in seconds means what it means live.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

from ..analytics.mot import MotFormatError, detections_by_frame, read_mot, read_seqinfo, write_tracks
from ..analytics.tracker import Tracker
from ..config.schema import TrackerConfig
from ..core.progress import add_progress_flag, progress


def settings_args(p: argparse.ArgumentParser) -> None:
    """--high-score, --min-hits, ... one flag per [models.NAME.tracker] key, with the config's doc and
    default (the config schema is the one definition of the tracker's settings)."""
    for f in fields(TrackerConfig):
        if f.name == "enabled":
            continue
        flag = "--" + f.name.replace("_", "-")
        doc = f"{f.metadata.get('doc', '')} (default {f.default})".replace("%", "%%")
        if f.type in (str, "str"):
            p.add_argument(flag, default=f.default, choices=f.metadata.get("choices"), help=doc)
        elif f.type in (bool, "bool"):
            p.add_argument(flag, type=lambda v: v.lower() in ("1", "true", "yes"), default=f.default,
                           metavar="BOOL", help=doc)
        else:
            p.add_argument(flag, type=int if f.type in (int, "int") else float, default=f.default, help=doc)


def settings_from(a: argparse.Namespace) -> TrackerConfig:
    return TrackerConfig(enabled=True, **{f.name: getattr(a, f.name) for f in fields(TrackerConfig)
                                          if f.name != "enabled"})


def run(detections: Path, out: Path, seqinfo: Path | None = None, settings: TrackerConfig | None = None,
        frame_rate: float | None = None, show_progress: bool = False) -> dict[str, float]:
    rows = read_mot(detections)
    info_path = seqinfo or (detections.parent.parent / "seqinfo.ini")
    info = read_seqinfo(info_path) if info_path.is_file() else None
    fps = frame_rate or (info.frame_rate if info else 30.0)
    length = info.length if info else None
    tracker = Tracker(settings)
    frames = []
    t0 = time.perf_counter()
    per_frame = detections_by_frame(rows, length)
    for f, det in progress(per_frame, len(per_frame), "track", show_progress):
        frames.append((f, tracker.update(det, (f - 1) / fps)))
    seconds = time.perf_counter() - t0
    write_tracks(out, frames)
    return {"frames": len(frames), "tracks": tracker.confirmed_total, "ms_per_frame": 1e3 * seconds / max(len(frames), 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app track", description=__doc__)
    p.add_argument("--detections", required=True, type=Path, help="MOTChallenge det.txt")
    p.add_argument("--seqinfo", type=Path, help="seqinfo.ini (default: beside det/; gives frame rate and length)")
    p.add_argument("--out", required=True, type=Path, help="MOT-format tracks to write")
    p.add_argument("--frame-rate", type=float, help="frames per second (default: seqinfo's, else 30)")
    settings_args(p)
    add_progress_flag(p)
    a = p.parse_args(argv)
    try:
        r = run(a.detections, a.out, a.seqinfo, settings_from(a), a.frame_rate, not a.no_progress)
    except MotFormatError as exc:
        print(f"edge-app track: {exc}", file=sys.stderr)
        return 2
    print(f"{a.out}: {r['tracks']} tracks over {r['frames']} frames, {r['ms_per_frame']:.2f} ms per frame")
    return 0
