"""Roboflow `trackers`' ByteTrack over MOTChallenge detections, for bench_tracking.py.

Runs in a separate venv (the `trackers` package pulls opencv-python, which must not meet the project's
opencv-python-headless): ``VENV/bin/python theirs_bytetrack.py det.txt out.txt FPS LENGTH`` writes MOT
tracks and prints ms per update; ``... --time N`` times one update at N detections on ``scene(N)``.
``scene`` needs numpy only: bench_tracking.py imports it, so both trackers time the same frames.
"""
import sys
import time

import numpy as np


def scene(n: int, frames: int = 300, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``frames`` frames of ``n`` boxes (xyxy, 40 px) drifting over a 1920 x 1080 view, with scores."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1800, (n, 2))
    v = rng.normal(0, 2, (n, 2))
    out = []
    for f in range(frames):
        p = xy + v * f + rng.normal(0, 0.5, (n, 2))
        out.append((np.concatenate([p, p + 40.0], axis=1), rng.uniform(0.3, 1.0, n)))
    return out


def _dets(xyxy, conf):
    import supervision as sv
    return sv.Detections(xyxy=np.asarray(xyxy, float).reshape(-1, 4), confidence=np.asarray(conf, float),
                         class_id=np.zeros(len(conf), int))


def track(det_path, out_path, fps, length):
    from trackers import ByteTrackTracker

    a = np.loadtxt(det_path, delimiter=",", ndmin=2)
    a = a[np.argsort(a[:, 0], kind="stable")]
    tracker = ByteTrackTracker(frame_rate=fps)
    lines, t = [], 0.0
    for f in range(1, length + 1):
        rows = a[a[:, 0] == f]
        d = _dets(np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1), rows[:, 6])
        t0 = time.perf_counter()
        out = tracker.update(d)
        t += time.perf_counter() - t0
        conf = out.confidence if out.confidence is not None else np.ones(len(out))
        for box, tid, c in zip(out.xyxy, out.tracker_id, conf):
            if tid is None or tid < 0:
                continue
            x1, y1, x2, y2 = box
            lines.append(f"{f},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{c:.4f},-1,-1,-1")
    open(out_path, "w").write("\n".join(lines) + "\n")
    print(f"{1e3 * t / length:.4f}")


def timing(n):
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker()
    times = []
    for boxes, scores in scene(n):
        d = _dets(boxes, scores)
        t0 = time.perf_counter()
        tracker.update(d)
        times.append(time.perf_counter() - t0)
    print(f"{1e3 * float(np.median(times[20:])):.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "--time":
        timing(int(sys.argv[2]))
    else:
        track(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
