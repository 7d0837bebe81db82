"""The operating point the runtime really uses: `edge-app calibrate` chooses thresholds on a labelled set
and writes what its decode gives there; the live app replaying that set with those thresholds must
report the same numbers in /status, per class, to the last detection (and the same per-class IoU for the
segmenter). Two real processes, no shared code path between the two numbers but the runtime's own."""
import json
import subprocess
import sys
import time

import pytest

from edge_app.datasets.synthetic import write_dataset
from tests.test_app import Running, free_port, http_get

pytestmark = pytest.mark.slow


def _close(live, expected):
    return (live is None and expected is None) or (live is not None and expected is not None
                                                    and abs(live - expected) <= 1e-6)


def test_live_replay_reproduces_calibrated_expectation(tmp_path, demo_detector, demo_segmenter):
    data = write_dataset(tmp_path / "data", 30, seed=23, width=320, height=240)  # boxes and masks
    thresholds = tmp_path / "detector.thresholds.json"
    r = subprocess.run([sys.executable, "-m", "edge_app", "calibrate", "--artifact", str(demo_detector),
                        "--artifact", str(demo_segmenter), "--data", str(data), "--thresholds", str(thresholds),
                        "--out", str(tmp_path / "report"), "--no-progress"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    chosen = json.loads(thresholds.read_text())
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    seg = next(m for m in report["models"] if m["task"] == "segmentation")
    # thresholds are detections' own scores: the boundary decides whether those detections count
    assert chosen["rule"] == "score >= threshold"

    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"""
[source]
uri = "replay://{data}"
width = 320
height = 240
fps = 30.0
loop = false
realtime = false

[models.detector]
kind = "detector"
artifact = "{demo_detector}"
precision = "{chosen['precision']}"
thresholds_file = "{thresholds}"
top_k = {chosen['expected_with']['top_k']}

[models.segmenter]
kind = "segmenter"
artifact = "{demo_segmenter}"
precision = "{seg['recommended']}"
backend = "{seg.get('recommended_backend') or 'auto'}"  # the one measured: backends differ in the last digits

[output.http]
port = {port}

[rolling]
window_frames = 1000
window_seconds = 1000000.0

[logging]
file = ""
""")
    app = Running(config, max_seconds=120)
    try:
        app.wait_event("started")
        deadline = time.monotonic() + 90
        status = {}
        while time.monotonic() < deadline:
            code, body = http_get(f"http://127.0.0.1:{port}/status")
            status = json.loads(body) if code == 200 else {}
            if status.get("source", {}).get("state") == "ended" and status["rolling"]["detector"]["frames"] == 30:
                break
            time.sleep(0.3)
    finally:
        app.stop()
    det = status["rolling"]["detector"]
    assert det["frames"] == 30 and status["rolling"]["segmenter"]["frames"] == 30, status.get("rolling")
    assert status["counters"].get("frame_errors", 0) == 0
    found = 0
    for name, want in chosen["expected"].items():
        got = det["per_class"][name]
        assert (got["tp"], got["fp"], got["labels"]) == (want["tp"], want["fp"], want["labels"]), name
        for key in ("precision", "recall", "f1"):
            assert _close(got[key], want[key]), (name, key, got[key], want[key])
        found += want["tp"]
    assert found > 0  # the demo detector finds shapes here: the comparison is not vacuous
    for key in ("precision", "recall"):
        assert _close(det[key], chosen["expected_overall"][key])
    for row in seg["per_class"]:
        assert _close(status["rolling"]["segmenter"]["per_class"][row["class"]]["iou"], row["iou"]), row
