"""Roboflow `trackers`' ByteTrack over MOTChallenge detections, for bench_tracking.py.

Runs in a separate venv (the `trackers` package pulls opencv-python, which must not meet the project's
opencv-python-headless): ``VENV/bin/python theirs_bytetrack.py det.txt out.txt FPS LENGTH`` writes MOT
tracks; ``... --time N`` times one update at N detections instead. Uses only numpy, supervision, trackers.
"""
import sys
import time

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker


def _dets(rows):
    if len(rows) == 0:
        return sv.Detections(xyxy=np.zeros((0, 4)), confidence=np.zeros(0), class_id=np.zeros(0, int))
    xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
    return sv.Detections(xyxy=xyxy, confidence=rows[:, 6], class_id=np.zeros(len(rows), int))


def track(det_path, out_path, fps, length):
    a = np.loadtxt(det_path, delimiter=",", ndmin=2)
    a = a[np.argsort(a[:, 0], kind="stable")]
    tracker = ByteTrackTracker(frame_rate=fps)
    lines, t = [], 0.0
    for f in range(1, length + 1):
        d = _dets(a[a[:, 0] == f])
        t0 = time.perf_counter()
        out = tracker.update(d)
        t += time.perf_counter() - t0
        for box, tid, conf in zip(out.xyxy, out.tracker_id, out.confidence if out.confidence is not None else
                                  np.ones(len(out))):
            if tid is None or tid < 0:
                continue
            x1, y1, x2, y2 = box
            lines.append(f"{f},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},-1,-1,-1")
    open(out_path, "w").write("\n".join(lines) + "\n")
    print(f"{1e3 * t / length:.4f}")


def timing(n, frames=60, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1800, (n, 2))
    v = rng.normal(0, 2, (n, 2))
    tracker = ByteTrackTracker()
    times = []
    for f in range(frames):
        p = xy + v * f + rng.normal(0, 0.5, (n, 2))
        rows = np.concatenate([np.zeros((n, 2)), p, np.full((n, 2), 40.0), rng.uniform(0.3, 1.0, (n, 1))], axis=1)
        d = _dets(rows)
        t0 = time.perf_counter()
        tracker.update(d)
        times.append(time.perf_counter() - t0)
    print(f"{1e3 * float(np.median(times[5:])):.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "--time":
        timing(int(sys.argv[2]))
    else:
        track(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
