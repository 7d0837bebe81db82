"""What a candidate model in shadow costs the live stream (edge_app.rollout.shadow).

A real ``edge-app run`` on the synthetic scene with ``realtime = false`` (every frame, as fast as the models
go: the stream is CPU bound, so any CPU the candidate takes would show as lost fps), the demo detector live,
sampling 1 in 30 for labelling. Rounds alternate without and with a candidate (the demo detector again, at
the default ``shadow_every`` = 10 and ``shadow_share`` = 0.25), each ``--seconds`` long after a warm-up; the
live fps is read from ``/status`` (frames through the outputs over the window). Reports the medians and
the ratio with / without (goal >= 0.9), the candidate's measured CPU share and runs.

Run: `python tests/benchmarks/bench_shadow.py [--rounds 3] [--seconds 20]`; writes bench/shadow.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.gst_helpers import free_port  # noqa: E402
from tests.test_app import http_get  # noqa: E402

DEMO = ROOT / "edge_app" / "demo" / "detector.onnx"


def _config(folder: Path, port: int, candidate: bool) -> Path:
    cand = f'[models.detector.candidate]\nartifact = "{DEMO}"\n' if candidate else ""
    text = f"""
[source]
uri = "synthetic://"
width = 640
height = 480
realtime = false

[models.detector]
kind = "detector"
artifact = "{DEMO}"
thresholds_file = "{DEMO.with_suffix('.thresholds.json')}"
{cand}
[output.http]
port = {port}

[labels]
sample_every = 30
samples_dir = "{folder / 'samples'}"
inbox = "{folder / 'inbox'}"

[rollout]
state_dir = "{folder / 'rollout'}"
frames = 100000

[logging]
file = "{folder / 'log.jsonl'}"
"""
    path = folder / "config.toml"
    path.write_text(text)
    return path


def _status(port: int) -> dict:
    return json.loads(http_get(f"http://127.0.0.1:{port}/status", timeout=5)[1])


def one(candidate: bool, seconds: float, warmup: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(_config(Path(tmp), port, candidate)),
                                 "--max-seconds", str(seconds + warmup + 30)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            end = time.monotonic() + 60
            while time.monotonic() < end:
                try:
                    if _status(port)["counters"].get("frames_out", 0) > 0:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            time.sleep(warmup)
            a = _status(port)
            t0 = time.monotonic()
            time.sleep(seconds)
            b = _status(port)
            t1 = time.monotonic()
        finally:
            proc.terminate()
            proc.wait(20)
    fps = (b["counters"]["frames_out"] - a["counters"]["frames_out"]) / (t1 - t0)
    cand = (b["models"]["detector"] or {}).get("candidate") or {}
    return {"fps": round(fps, 2), "shadow": cand.get("shadow")}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--warmup", type=float, default=5)
    a = p.parse_args()
    without, with_ = [], []
    for i in range(a.rounds):
        without.append(one(False, a.seconds, a.warmup))
        with_.append(one(True, a.seconds, a.warmup))
        print(f"round {i + 1}: without {without[-1]['fps']} fps, with {with_[-1]['fps']} fps, shadow "
              f"{with_[-1]['shadow']}", flush=True)
    f0, f1 = float(np.median([r["fps"] for r in without])), float(np.median([r["fps"] for r in with_]))
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")),
                 platform.processor())
    out = {"fps_without": f0, "fps_with": f1, "ratio": round(f1 / f0, 3), "rounds": a.rounds, "seconds": a.seconds,
           "shadow": [r["shadow"] for r in with_], "cpu": model, "cores": len(__import__("os").sched_getaffinity(0))}
    print(json.dumps(out))
    (ROOT / "bench").mkdir(exist_ok=True)
    (ROOT / "bench" / "shadow.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"live fps with a candidate in shadow: {f1:.1f} vs {f0:.1f} without: {f1 / f0:.3f} (goal >= 0.9)")
    return 0 if f1 / f0 >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
