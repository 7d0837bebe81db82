"""The tracking benchmark's anchors over MOTChallenge detections, for bench_tracking.py.

Each library runs in its own venv (``make anchors``: var/venvs/trackers, var/venvs/boxmot; they pull
opencv-python and torch, which must not meet the test venv): ``VENV/bin/python anchor_trackers.py NAME
det.txt out.txt FPS LENGTH WIDTH HEIGHT`` writes MOT tracks and prints ms per update; ``... --time NAME N``
times one update at N detections on ``scene(N)``. Every tracker runs with its library's defaults, without
images: no appearance (ReID) and no camera-motion compensation, as the shared sequences have no frames.
``scene`` needs numpy only: bench_tracking.py imports it, so every tracker times the same frames.
"""
import sys
import time

import numpy as np

# name -> (venv under var/venvs, what it is)
ANCHORS = {
    "trackers-bytetrack": ("trackers", "roboflow trackers 2.6.1 ByteTrack"),
    "trackers-botsort": ("trackers", "roboflow trackers 2.6.1 BoTSORT (no CMC)"),
    "boxmot-botsort": ("boxmot", "boxmot 25.0 BotSort (no ReID, no CMC)"),
    "boxmot-occluboost": ("boxmot", "boxmot 25.0 OccluBoost (no ReID, no CMC)"),
    "boxmot-ocsort": ("boxmot", "boxmot 25.0 OcSort"),
}


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


class _Roboflow:
    def __init__(self, name, fps):
        import supervision as sv
        from trackers import BoTSORTTracker, ByteTrackTracker
        self.sv = sv
        self.t = ByteTrackTracker(frame_rate=fps) if name.endswith("bytetrack") else \
            BoTSORTTracker(frame_rate=fps, enable_cmc=False)

    def update(self, xyxy, conf, image):
        d = self.sv.Detections(xyxy=xyxy, confidence=conf, class_id=np.zeros(len(conf), int))
        out = self.t.update(d)
        c = out.confidence if out.confidence is not None else np.ones(len(out))
        keep = np.array([tid is not None and tid >= 0 for tid in out.tracker_id], bool) if len(out) else np.zeros(0, bool)
        return out.xyxy[keep], np.asarray(out.tracker_id)[keep].astype(int), np.asarray(c)[keep]


class _Boxmot:
    def __init__(self, name, fps):
        from boxmot.trackers.factory import create_tracker
        from boxmot.trackers.specs import TrackerSpec
        kind = name.split("-", 1)[1]
        options = {"frame_rate": int(round(fps))} if kind == "botsort" else {}
        if kind in ("botsort", "occluboost"):
            options.update(use_embeddings=False, use_cmc=False)
        self.t = create_tracker(TrackerSpec(name=kind, options=tuple(sorted(options.items()))))

    def update(self, xyxy, conf, image):
        # boxmot refuses scores outside 0..1: MOT15's ACF scores are unbounded (-0.7 .. 139), so they are
        # clipped for it (every one above 1 is a sure detection to it, as to the others' thresholds)
        conf = np.clip(conf, 0.0, 1.0)
        dets = np.concatenate([xyxy, conf[:, None], np.zeros((len(conf), 1))], axis=1)
        out = np.asarray(self.t.update(dets, image))
        if out.size == 0:
            return np.zeros((0, 4)), np.zeros(0, int), np.zeros(0)
        return out[:, 0:4], out[:, 4].astype(int), out[:, 5]


def make(name, fps):
    return _Roboflow(name, fps) if name.startswith("trackers") else _Boxmot(name, fps)


def track(name, det_path, out_path, fps, length, width, height):
    a = np.loadtxt(det_path, delimiter=",", ndmin=2)
    a = a[np.argsort(a[:, 0], kind="stable")]
    tracker = make(name, fps)
    image = np.zeros((height, width, 3), np.uint8)  # no frames here: boxmot's API asks for one
    starts = np.searchsorted(a[:, 0], np.arange(1, length + 2))
    lines, t = [], 0.0
    for f in range(1, length + 1):
        rows = a[starts[f - 1]:starts[f]]
        xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
        t0 = time.perf_counter()
        boxes, ids, conf = tracker.update(xyxy, rows[:, 6].astype(float), image)
        t += time.perf_counter() - t0
        for (x1, y1, x2, y2), tid, c in zip(boxes, ids, conf):
            lines.append(f"{f},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{c:.4f},-1,-1,-1")
    open(out_path, "w").write("\n".join(lines) + "\n")
    print(f"{1e3 * t / length:.4f}")


def timing(name, n):
    tracker = make(name, 30.0)
    image = np.zeros((1080, 1920, 3), np.uint8)
    times = []
    for boxes, scores in scene(n):
        t0 = time.perf_counter()
        tracker.update(boxes, scores, image)
        times.append(time.perf_counter() - t0)
    print(f"{1e3 * float(np.median(times[20:])):.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "--time":
        timing(sys.argv[2], int(sys.argv[3]))
    else:
        track(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), *map(int, sys.argv[5:8]))
