"""Tracking benchmarks, in one run, on the same machine:

1. accuracy: our tracker (``edge-app track``'s code) and roboflow `trackers`' ByteTrack (PyPI, in its own
   venv under var/venvs/trackers, made here when missing: it pulls opencv-python) on the same public
   detections of the shared MOTChallenge sequences, both scored by TrackEval (HOTA, IDF1, MOTA).
   Goal: HOTA and IDF1 at least theirs on every sequence.
2. speed: one update at 10 / 100 / 500 detections on the same generated frames, median ms; goal ours
   at most half of theirs.
3. live: the tracker's p50/p99 ms inside the pipeline (synthetic scene, demo detector, every frame as
   fast as it goes), and the pipeline's fps with tracking and two counting lines on against off
   (alternating runs, medians).

Run: `python tests/benchmarks/bench_tracking.py [--part accuracy,speed,live]`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
MOT = ROOT.parent / "shared" / "data" / "mot"
SEQUENCES = ["MOT17-02-FRCNN", "MOT17-04-FRCNN", "MOT17-05-FRCNN", "MOT17-09-FRCNN", "TUD-Campus",
             "PETS09-S2L1", "ETH-Sunnyday"]
VENV = ROOT / "var" / "venvs" / "trackers"
THEIRS = Path(__file__).with_name("theirs_bytetrack.py")


def theirs_python() -> Path:
    py = VENV / "bin" / "python"
    if not py.is_file():
        print(f"making {VENV} for roboflow trackers (pip install trackers==2.6.1)", flush=True)
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "trackers==2.6.1"], check=True)
    return py


def accuracy(work: Path) -> dict:
    from calibration.tracks import evaluate_tracks
    from edge_app.analytics.mot import read_seqinfo
    from edge_app.cli.track import run

    py = theirs_python()
    rows = []
    for seq in SEQUENCES:
        d = MOT / seq
        if not d.is_dir():
            continue
        info = read_seqinfo(d / "seqinfo.ini")
        ours_out, theirs_out = work / f"ours-{seq}.txt", work / f"theirs-{seq}.txt"
        ours_ms = run(d / "det" / "det.txt", ours_out)["ms_per_frame"]
        theirs_ms = float(subprocess.run([str(py), str(THEIRS), str(d / "det" / "det.txt"), str(theirs_out),
                                          str(info.frame_rate), str(info.length)], capture_output=True, text=True,
                                         check=True).stdout.strip())
        o, t = (evaluate_tracks(d / "gt" / "gt.txt", p) for p in (ours_out, theirs_out))
        row = {"sequence": seq, "ours": {k: o[k] for k in ("HOTA", "IDF1", "MOTA", "IDSW")},
               "theirs": {k: t[k] for k in ("HOTA", "IDF1", "MOTA", "IDSW")}, "ours_ms": ours_ms, "theirs_ms": theirs_ms}
        rows.append(row)
        print(f"{seq:>15}  HOTA {o['HOTA']:.3f} vs {t['HOTA']:.3f}  IDF1 {o['IDF1']:.3f} vs {t['IDF1']:.3f}  "
              f"MOTA {o['MOTA']:.3f} vs {t['MOTA']:.3f}  (ours vs trackers' ByteTrack)", flush=True)
    mean = {side: {k: float(np.mean([r[side][k] for r in rows])) for k in ("HOTA", "IDF1", "MOTA")}
            for side in ("ours", "theirs")}
    return {"benchmark": "tracking_accuracy", "rows": rows, "mean": mean}


def speed() -> dict:
    from theirs_bytetrack import scene

    from edge_app.analytics.tracker import Tracker
    from edge_app.core.types import Detections

    py = theirs_python()
    rows = []
    for n in (10, 100, 500):
        ours, theirs = [], []
        for _round in range(3):  # taking turns: load from elsewhere falls on both
            tracker, times = Tracker(), []
            for f, (boxes, scores) in enumerate(scene(n)):
                d = Detections(boxes, scores, np.zeros(n, np.int64))
                t0 = time.perf_counter()
                tracker.update(d, f / 30)
                times.append(time.perf_counter() - t0)
            ours.append(1e3 * float(np.median(times[20:])))
            theirs.append(float(subprocess.run([str(py), str(THEIRS), "--time", str(n)], capture_output=True,
                                               text=True, check=True).stdout.strip()))
        o, t = statistics.median(ours), statistics.median(theirs)
        rows.append({"detections": n, "ours_ms": o, "theirs_ms": t, "ratio": o / t})
        print(f"{n:>4} detections: ours {o:.3f} ms, trackers' ByteTrack {t:.3f} ms per update: ratio {o / t:.2f} "
              "(goal <= 0.5)", flush=True)
    return {"benchmark": "tracking_speed", "rows": rows}


def _pipeline_fps(tracking: bool, seconds: float) -> tuple[float, dict]:
    from edge_app.analytics.counting import Analytics
    from edge_app.config.schema import AnalyticsConfig, LineConfig, TrackerConfig
    from edge_app.inference.models import ModelSpec, open_model
    from edge_app.pipeline import Pipeline
    from edge_app.rolling import RollingMonitor
    from edge_app.sources.synthetic import SyntheticSource
    from edge_app.telemetry import Telemetry

    demo = ROOT / "edge_app" / "demo"
    model = open_model(ModelSpec("detector", "detector", demo / "detector.onnx",
                                 thresholds_file=demo / "detector.thresholds.json"))
    lines = (LineConfig(name="a", points=((320.0, 40.0), (320.0, 440.0))),
             LineConfig(name="b", points=((40.0, 240.0), (600.0, 240.0))))
    analytics = Analytics(AnalyticsConfig(lines=lines), {"detector": TrackerConfig(enabled=True)} if tracking else {},
                          640, 480)
    telemetry = Telemetry()
    source = SyntheticSource("synthetic://", width=640, height=480, fps=30, seed=1, realtime=False)
    pipe = Pipeline(source, [model], [], RollingMonitor(), telemetry, hud=True, analytics=analytics)
    pipe.start()
    time.sleep(3)
    before, t0 = telemetry.counters["frames_out"], time.monotonic()
    time.sleep(seconds)
    fps = (telemetry.counters["frames_out"] - before) / (time.monotonic() - t0)
    lat = telemetry.latency()
    pipe.stop()
    return fps, lat.get("tracking", {})


def live(seconds: float = 20.0) -> dict:
    on, off, stage = [], [], {}
    for _round in range(3):
        fps, lat = _pipeline_fps(True, seconds)
        on.append(fps)
        stage = lat or stage
        off.append(_pipeline_fps(False, seconds)[0])
    r = {"benchmark": "tracking_live", "fps_tracking": statistics.median(on), "fps_without": statistics.median(off),
         "tracker_ms": stage}
    r["ratio"] = r["fps_tracking"] / r["fps_without"]
    print(f"live: {r['fps_tracking']:.2f} fps with tracking + 2 lines, {r['fps_without']:.2f} without: "
          f"{r['ratio']:.3f}; tracker p50 {stage.get('p50', 0):.2f} ms, p99 {stage.get('p99', 0):.2f} ms", flush=True)
    return r


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--part", default="accuracy,speed,live")
    a = p.parse_args()
    parts = a.part.split(",")
    work = ROOT / "var" / "bench-tracking"
    work.mkdir(parents=True, exist_ok=True)
    out = []
    if "accuracy" in parts and MOT.is_dir():
        out.append(accuracy(work))
    if "speed" in parts:
        out.append(speed())
    if "live" in parts:
        out.append(live())
    for r in out:
        print(f"SUMMARY {r['benchmark']}")
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
