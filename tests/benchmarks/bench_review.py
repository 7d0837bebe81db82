"""The labelling loop on the demo, measured: thresholds chosen on still images vs thresholds chosen on
labelled live frames.

1. ``edge-app run`` on the live synthetic scene without labels (``synthetic://?labels=off``, seed 11, as a
   camera gives it), the demo detector with its shipped thresholds (calibrated on still images); 200
   sampled frames are labelled through the review API (``POST /api/samples/<id>/labels``) with the scene's
   exact truth (rebuilt from the seed and the frame index: it stands in for a person).
2. ``edge-app samples export`` -> ``edge-app calibrate --data`` picks thresholds from those live frames.
3. the same camera later on: ``edge-app run`` on the scene again (seed 11, labelled, every frame); past
   the frames that were labelled, the live thresholds are written over the thresholds file and put in by
   SIGHUP; the rolling P/R/F1 per class of the 600 frames after it, against a second run of the same
   frames with the still-image thresholds.

Run: `python tests/benchmarks/bench_review.py` (about 3 minutes).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "edge_app" / "demo"
W, H = 640, 480
WINDOW = 600  # labelled frames in the rolling window that is compared


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _post(url: str, body: object) -> object:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _config(tmp: Path, name: str, uri: str, seed: int, thresholds: Path, port: int, extra: str = "") -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(f"""
[source]
uri = "{uri}"
width = {W}
height = {H}
fps = 15.0
seed = {seed}
{extra}
[models.detector]
kind = "detector"
artifact = "{DEMO / 'detector.onnx'}"
thresholds_file = "{thresholds}"
[output.http]
port = {port}
[rolling]
window_frames = {WINDOW}
window_seconds = 100000
[labels]
sample_every = 3
uncertain_margin = 0
disagreements = false
samples_dir = "{tmp / name / 'samples'}"
inbox = "{tmp / name / 'inbox'}"
[logging]
file = ""
""")
    return path


@contextlib.contextmanager
def _app(tmp: Path, name: str, uri: str, seed: int, thresholds: Path, extra: str = "") -> Iterator:
    """``edge-app run`` of one config; yields (the app's base URL, the process); stopped by SIGTERM."""
    from tests.gst_helpers import free_port

    port = free_port()
    config = _config(tmp, name, uri, seed, thresholds, port, extra)
    app = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(config), "--log-format",
                            "json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(30)


def _frames(base: str) -> int:
    return _get(base + "/status")["source"]["frames"]


def _wait(pred, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _truths(seed: int, last: int) -> list:
    from edge_app.datasets.synthetic import CLASSES, SyntheticVideo

    video = SyntheticVideo(W, H, seed)
    out = []
    for _ in range(last + 1):
        s = video.next()
        out.append([{"box": [round(float(v), 1) for v in b], "class": CLASSES[c]}
                    for b, c in zip(s.truth.boxes.tolist(), s.truth.classes.tolist())])
    return out


def _per_class(base: str) -> dict:
    r = _get(base + "/status")["rolling"]["detector"]
    return {"frames": r["frames"], "all": {k: r[k] for k in ("precision", "recall", "f1")},
            **{c: {k: v[k] for k in ("precision", "recall", "f1")} for c, v in r["per_class"].items()}}


def run(samples: int = 200) -> dict:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        still = tmp / "still.thresholds.json"
        shutil.copyfile(DEMO / "detector.thresholds.json", still)
        # 1. label live frames through the API
        with _app(tmp, "collect", "synthetic://?labels=off", 11, still) as (base, _):
            assert _wait(lambda: len(_get(base + "/api/samples?limit=5000")) >= samples, 300), "too few samples"
            todo = sorted(_get(base + "/api/samples?limit=5000"), key=lambda s: s["frame"])[:samples]
            truth = _truths(11, max(s["frame"] for s in todo))
            for s in todo:
                _post(f"{base}/api/samples/{s['id']}/labels", {"boxes": truth[s["frame"]]})
            live_during = _per_class(base)   # what the review itself scored: still-image thresholds, live frames
        # 2. export, calibrate on them
        data = tmp / "live-labels"
        subprocess.run([sys.executable, "-m", "edge_app", "samples", "export", str(data), "--samples",
                        str(tmp / "collect" / "samples")], check=True, capture_output=True, cwd=ROOT)
        live = tmp / "live.thresholds.json"
        cal = subprocess.run([sys.executable, "-m", "edge_app", "calibrate", "--artifact", str(DEMO / "detector.onnx"),
                              "--data", str(data), "--thresholds", str(live), "--out", str(tmp / "report"),
                              "--no-progress"], capture_output=True, text=True, cwd=ROOT)
        assert cal.returncode == 0, cal.stderr[-3000:]
        # 3. the same camera later on (seed 11, every frame, labelled, past the frames labelled above): the
        # same 600 frames scored with the live thresholds put in by SIGHUP (one run) and with the still-image
        # thresholds (a second run)
        start = max(s["frame"] for s in todo) + 30
        active = tmp / "active.thresholds.json"
        shutil.copyfile(still, active)
        with _app(tmp, "hup", "synthetic://", 11, active, "realtime = false") as (base, app):
            assert _wait(lambda: _frames(base) >= start, 300)
            shutil.copyfile(live, active)
            app.send_signal(signal.SIGHUP)
            time.sleep(1.0)  # the main loop reloads within its 0.5 s tick; the window starts after that
            at = _frames(base)
            assert _wait(lambda: _frames(base) >= at + WINDOW + 20, 300)
            after = _per_class(base)
            end = _frames(base)
        shutil.copyfile(still, active)
        with _app(tmp, "still", "synthetic://", 11, active, "realtime = false") as (base, _):
            assert _wait(lambda: _frames(base) >= end, 300)
            before = _per_class(base)
        thresholds = {"still": json.loads(still.read_text())["score_thresholds"],
                      "live": json.loads(live.read_text())["score_thresholds"]}
    return {"samples": samples, "labelled_frames": [todo[0]["frame"], todo[-1]["frame"]], "window_end": end,
            "thresholds": thresholds, "review_window": live_during, "before": before,
            "after": after}


def main() -> int:
    r = run()
    print(f"{r['samples']} live frames labelled through the review API; thresholds still -> live: "
          + ", ".join(f"{c} {r['thresholds']['still'][c]:.3f} -> {r['thresholds']['live'][c]:.3f}"
                      for c in r["thresholds"]["live"]))
    for cls in [c for c in r["before"] if c != "frames"]:
        b, a = r["before"][cls], r["after"][cls]
        print(f"  {cls:9s} P {b['precision']:.3f} -> {a['precision']:.3f}  R {b['recall']:.3f} -> {a['recall']:.3f}  "
              f"F1 {b['f1']:.3f} -> {a['f1']:.3f}")
    print("SUMMARY review")
    print(json.dumps({"benchmark": "review", **r}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
