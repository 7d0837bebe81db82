"""Pipeline benchmarks (same process, same artifacts, same decoded frames):

1. efficiency: the live pipeline's fps (file source, detector + segmenter, overlays, MJPEG encoding)
   divided by bare inference fps of the same models on the same frames. Goal >= 0.90.
2. latency: per-stage p50/p90/p99 and frame age at the output with a 30 fps live source for --minutes
   (default 10), sampled every 10 s: goal p99/p50 <= 1.5 and no upward trend of the frame age.

Run: `python tests/benchmarks/bench_pipeline.py [--minutes 10] [--part efficiency|latency|both]`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VIDEO = ROOT.parent / "shared" / "data" / "videos" / "intel_car-detection.mp4"
DEMO = ROOT / "edge_app" / "demo"


def models():
    from edge_app.inference.models import ModelSpec, open_model
    return [open_model(ModelSpec("detector", "detector", DEMO / "detector.onnx",
                                 thresholds_file=DEMO / "detector.thresholds.json")),
            open_model(ModelSpec("segmenter", "segmenter", DEMO / "segmenter.onnx"))]


def decoded_frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < n:
        ok, f = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(cv2.resize(f, size))
    return frames


def efficiency(seconds: float = 30.0) -> dict:
    from edge_app.outputs.http import HttpOutput
    from edge_app.pipeline import Pipeline
    from edge_app.rolling import RollingMonitor
    from edge_app.sources import CaptureSettings, open_source
    from edge_app.telemetry import Telemetry

    size = (640, 360)
    ms = models()
    frames = decoded_frames(60, size)
    for f in frames[:5]:
        for m in ms:
            m.predict(f)
    t0 = time.perf_counter()
    for f in frames:
        for m in ms:
            m.predict(f)
    bare = len(frames) / (time.perf_counter() - t0)
    source = open_source(f"file://{VIDEO}", CaptureSettings(width=size[0], height=size[1], loop=True, sync=False))
    telemetry = Telemetry()
    rolling = RollingMonitor()
    http = HttpOutput(host="127.0.0.1", port=0, token="", jpeg_quality=80, status=lambda: {}, healthy=lambda: True)
    pipe = Pipeline(source, ms, [http], rolling, telemetry)
    pipe.start()
    time.sleep(5)  # warm-up
    start_n, start_t = telemetry.counters["frames_out"], time.monotonic()
    time.sleep(seconds)
    live = (telemetry.counters["frames_out"] - start_n) / (time.monotonic() - start_t)
    lat = telemetry.latency()
    pipe.stop()
    http.close()
    ratio = live / bare
    print(f"bare inference {bare:6.2f} fps, live pipeline {live:6.2f} fps, efficiency {ratio:.3f} (goal >= 0.90)")
    return {"benchmark": "pipeline_efficiency", "bare_fps": bare, "pipeline_fps": live, "ratio": ratio,
            "latency_ms": lat, "frame_size": list(size), "source_frames": source.stats.frames,
            "source_dropped": source.stats.dropped}


def latency(minutes: float) -> dict:
    from edge_app.pipeline import Pipeline
    from edge_app.rolling import RollingMonitor
    from edge_app.sources import CaptureSettings, open_source
    from edge_app.telemetry import Telemetry
    from edge_app.outputs.http import HttpOutput

    telemetry = Telemetry()
    source = open_source("test://", CaptureSettings(width=640, height=360, fps=30))
    http = HttpOutput(host="127.0.0.1", port=0, token="", jpeg_quality=80, status=lambda: {}, healthy=lambda: True)
    pipe = Pipeline(source, models(), [http], RollingMonitor(), telemetry)
    pipe.start()
    samples = []
    end = time.monotonic() + minutes * 60
    time.sleep(5)
    while time.monotonic() < end:
        time.sleep(10)
        lat = telemetry.latency()
        samples.append({"t": round(time.monotonic() - telemetry.started, 1), "fps": telemetry.fps(),
                        "age_p50": lat["frame_age"]["p50"], "age_p99": lat["frame_age"]["p99"]})
        print(f"t={samples[-1]['t']:6.0f}s fps {samples[-1]['fps']:5.2f} frame age p50 {samples[-1]['age_p50']:7.1f} "
              f"p99 {samples[-1]['age_p99']:7.1f} ms", flush=True)
    final = telemetry.latency()
    pipe.stop()
    http.close()
    t = np.array([s["t"] for s in samples])
    age = np.array([s["age_p50"] for s in samples])
    slope = float(np.polyfit(t, age, 1)[0] * 60) if len(samples) > 2 else 0.0  # ms per minute
    age_final = final["frame_age"]
    tail = age_final["p99"] / age_final["p50"]
    print(f"frame age p50 {age_final['p50']:.1f} ms, p99/p50 {tail:.2f} (goal <= 1.5), trend {slope:+.2f} ms/min")
    return {"benchmark": "pipeline_latency", "minutes": minutes, "latency_ms": final, "frame_age_p99_over_p50": tail,
            "frame_age_trend_ms_per_min": slope, "samples": samples, "dropped": source.stats.dropped,
            "frames": source.stats.frames}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--part", choices=("efficiency", "latency", "both"), default="both")
    a = p.parse_args()
    if not VIDEO.is_file():
        print(f"bench_pipeline: {VIDEO} not found", file=sys.stderr)
        return 2
    out = []
    if a.part in ("efficiency", "both"):
        out.append(efficiency())
    if a.part in ("latency", "both"):
        out.append(latency(a.minutes))
    for r in out:
        summary = (f"efficiency {r['ratio']:.3f}" if r["benchmark"] == "pipeline_efficiency" else
                   f"frame age p99/p50 {r['frame_age_p99_over_p50']:.2f}, trend {r['frame_age_trend_ms_per_min']:+.2f} ms/min")
        print(f"SUMMARY {r['benchmark']}: {summary}")
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
