"""The tracking benchmark's jobs, each run in a worker process (bench_tracking.py, tracking_unseen.py): our
tracker over one sequence with one setting, an anchor in its own venv, an anchor's tracks given our offline
gap filling; each scored by TrackEval (``edge-app evaluate-tracks``' code)."""
from __future__ import annotations

import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import tracking_counts as counting
import tracking_protocol as proto
from anchor_trackers import ANCHORS

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("anchor_trackers.py")
METRICS = ("HOTA", "IDF1", "MOTA", "IDSW", "AssA", "DetA")


def anchor_python(venv: str) -> Path:
    py = ROOT / "var" / "venvs" / venv / "bin" / "python"
    if not (py.parent.parent / ".stamp").is_file():
        print(f"making the anchors' venvs (make anchors: {venv})", flush=True)
        subprocess.run(["make", "-s", "anchors"], cwd=ROOT, check=True)
    return py


def ours(job: tuple[str, dict, str, str]) -> tuple[str, str, dict]:
    """One grid point on one sequence (a worker process): track, then TrackEval."""
    from calibration.tracks import evaluate_tracks
    from edge_app.cli.track import run
    from edge_app.config.schema import TrackerConfig
    name, settings, seq, out = job
    d = counting.seq_dir(seq)
    settings = dict(settings)
    interpolate_s = settings.pop("interpolate_s", 0.0)  # offline look-ahead: not a tracker setting
    run(d / "det" / "det.txt", Path(out), settings=TrackerConfig(enabled=True, **settings), interpolate_s=interpolate_s)
    m = evaluate_tracks(d / "gt" / "gt.txt", out)
    return name, seq, {k: m[k] for k in METRICS}


def anchor(job: tuple[str, str, str]) -> tuple[str, str, dict]:
    from calibration.tracks import evaluate_tracks
    from edge_app.datasets.motchallenge import read_seqinfo
    name, seq, out = job
    d = counting.seq_dir(seq)
    info = read_seqinfo(d / "seqinfo.ini")
    proc = subprocess.run([str(anchor_python(ANCHORS[name][0])), str(RUNNER), name, str(d / "det" / "det.txt"), out,
                           str(info.frame_rate), str(info.length), str(info.width), str(info.height)],
                          capture_output=True, text=True, check=True)
    m = evaluate_tracks(d / "gt" / "gt.txt", out)
    return name, seq, {**{k: m[k] for k in METRICS}, "ms": float(proc.stdout.strip().splitlines()[-1])}


def interpolated(job: tuple[str, str, str]) -> tuple[str, str, dict]:
    """An anchor's tracks with our offline interpolation (the same look-ahead, for a fair offline row)."""
    from calibration.tracks import evaluate_tracks
    from edge_app.analytics.interpolate import fill_gaps
    from edge_app.datasets.motchallenge import read_mot, read_seqinfo, write_tracks
    from edge_app.core.types import Tracks
    name, seq, src = job
    d = counting.seq_dir(seq)
    info = read_seqinfo(d / "seqinfo.ini")
    rows = read_mot(src)
    starts = np.searchsorted(rows.frames, np.arange(1, info.length + 2))
    frames = []
    for f in range(1, info.length + 1):
        a, b = starts[f - 1], starts[f]
        xyxy = np.concatenate([rows.boxes[a:b, :2], rows.boxes[a:b, :2] + rows.boxes[a:b, 2:]], axis=1)
        frames.append((f, Tracks(xyxy, rows.ids[a:b], np.zeros(b - a, np.int64), rows.conf[a:b].astype(np.float32))))
    out = src.replace(".txt", "-interpolated.txt")
    write_tracks(out, fill_gaps(frames, int(round(proto.INTERPOLATE_S * info.frame_rate))))
    m = evaluate_tracks(d / "gt" / "gt.txt", out)
    return name, seq, {k: m[k] for k in METRICS}


def pool(workers: int):
    return ProcessPoolExecutor(max_workers=workers, initializer=os.nice, initargs=(10,))
