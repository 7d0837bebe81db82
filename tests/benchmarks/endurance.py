"""Endurance runs that stop by themselves (not tests; run them and report the figures):

  soak    --minutes 30: the app on a looping file source at full load; RSS, open fds, threads and fps
          sampled each minute. Goal: RSS growth < 5 %, fds and threads flat, fps flat.
  faults  --restarts 20: an RTSP server on 127.0.0.1 killed and restarted; each reconnect within 3 s,
          no crash, no fd/thread growth.
  inputs: a truncated video, a corrupt JPEG in a replayed dataset, malformed VOC/COCO files, a corrupt
          ONNX: each gives its clear error (fatal at start) or a counted skip (per frame).

Run: `python tests/benchmarks/endurance.py soak|faults|inputs [...]`. Prints JSON lines and a SUMMARY.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.gst_helpers import free_port, start_rtsp_server  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "videos" / "intel_car-detection.mp4"
DEMO = ROOT / "edge_app" / "demo"


def config(folder: Path, uri: str, port: int, extra: str = "", realtime: bool = True) -> Path:
    path = folder / "config.toml"
    path.write_text(f"""
[source]
uri = "{uri}"
realtime = {str(realtime).lower()}
width = 640
height = 360
fps = 30.0
reconnect_initial_s = 0.2
reconnect_max_s = 1.0
[models.detector]
kind = "detector"
artifact = "{DEMO / 'detector.onnx'}"
thresholds_file = "{DEMO / 'detector.thresholds.json'}"
[models.segmenter]
kind = "segmenter"
artifact = "{DEMO / 'segmenter.onnx'}"
[output.http]
port = {port}
[rolling]
log_every_s = 5.0
[logging]
file = "{folder / 'edge.jsonl'}"
{extra}
""")
    return path


def proc_stats(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
    threads = int(next(line for line in status.splitlines() if line.startswith("Threads")).split()[1])
    return {"rss_mb": rss / 1024, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        return json.loads(r.read())


def start_app(cfg: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(cfg)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(8)
    return proc


def soak(minutes: float) -> dict:
    """Full load: the file plays with realtime=false (every frame, as fast as the models go) and a
    viewer in another process reads the MJPEG stream the whole time."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_pipeline import MjpegViewer

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_app(config(Path(tmp), f"file://{VIDEO}", port, realtime=False))
        viewer = MjpegViewer(f"http://127.0.0.1:{port}/", minutes * 60 + 5)
        samples = []
        try:
            for i in range(int(minutes) + 1):
                st = status(port)
                s = {"minute": i, **proc_stats(proc.pid), "fps": st["fps"],
                     "frames": st["source"]["frames"], "frame_errors": st.get("counters", {}).get("frame_errors", 0)}
                samples.append(s)
                print(json.dumps(s), flush=True)
                if i < int(minutes):
                    time.sleep(60)
            viewed = viewer.parts()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    base = samples[min(2, len(samples) - 1)]  # after warm-up (model sessions, caches)
    last = samples[-1]
    growth = (last["rss_mb"] - base["rss_mb"]) / base["rss_mb"] * 100
    out = {"benchmark": "soak", "minutes": minutes, "rss_growth_pct": growth, "fds": [base["fds"], last["fds"]],
           "threads": [base["threads"], last["threads"]], "fps": [samples[1]["fps"] if len(samples) > 1 else None,
                                                                   last["fps"]], "viewer_frames": viewed,
           "samples": samples}
    print(f"SUMMARY soak: {minutes} min, RSS {base['rss_mb']:.0f} -> {last['rss_mb']:.0f} MB ({growth:+.1f} %, goal < 5), "
          f"fds {base['fds']} -> {last['fds']}, threads {base['threads']} -> {last['threads']}, fps {out['fps']}, "
          f"{viewed} frames received by the MJPEG viewer")
    return out


def faults(restarts: int) -> dict:
    rtsp_port, port = free_port(), free_port()
    server = start_rtsp_server(rtsp_port)
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_app(config(Path(tmp), f"rtsp://127.0.0.1:{rtsp_port}/test", port))
        first = proc_stats(proc.pid)
        times = []
        try:
            for i in range(restarts):
                server.kill()
                server.wait()
                time.sleep(2.0)
                before = status(port)["source"]["frames"]
                server = start_rtsp_server(rtsp_port)
                t0 = time.monotonic()
                while status(port)["source"]["frames"] <= before and time.monotonic() - t0 < 15:
                    time.sleep(0.05)
                times.append(time.monotonic() - t0)
                print(json.dumps({"restart": i + 1, "reconnect_s": round(times[-1], 2), **proc_stats(proc.pid)}),
                      flush=True)
            alive = proc.poll() is None
            last = proc_stats(proc.pid)
            reconnects = status(port)["source"]["reconnects"]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
            server.kill()
    out = {"benchmark": "rtsp_faults", "restarts": restarts, "max_reconnect_s": max(times),
           "median_reconnect_s": sorted(times)[len(times) // 2], "alive": alive, "reconnects": reconnects,
           "fds": [first["fds"], last["fds"]], "threads": [first["threads"], last["threads"]]}
    print(f"SUMMARY faults: {restarts} restarts, reconnect max {max(times):.2f} s (goal < 3), alive {alive}, "
          f"fds {first['fds']} -> {last['fds']}, threads {first['threads']} -> {last['threads']}")
    return out


def inputs() -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        truncated = t / "truncated.mp4"
        truncated.write_bytes(VIDEO.read_bytes()[: VIDEO.stat().st_size // 3])
        corrupt_onnx = t / "corrupt.onnx"
        corrupt_onnx.write_bytes(DEMO.joinpath("detector.onnx").read_bytes()[:4096])
        cases = {"truncated video": config(t, f"file://{truncated}", free_port()),
                 "corrupt onnx": config(t, "synthetic://", free_port()).read_text().replace(
                     str(DEMO / "detector.onnx"), str(corrupt_onnx))}
        for name, cfg in cases.items():
            path = t / f"{name.replace(' ', '_')}.toml"
            path.write_text(cfg if isinstance(cfg, str) else cfg.read_text())
            r = subprocess.run([sys.executable, "-m", "edge_app", "run", "--config", str(path), "--max-seconds", "12"],
                               cwd=ROOT, capture_output=True, text=True, timeout=60)
            lines = [line for line in r.stdout.splitlines() if "error" in line.lower() or "lost" in line]
            metrics = [json.loads(line) for line in r.stdout.splitlines()
                       if line.startswith("{") and '"event": "metrics"' in line]
            last = metrics[-1] if metrics else {}
            results[name] = {"exit": r.returncode, "stderr": r.stderr.strip()[-300:], "log": lines[:3],
                             "frames_out": last.get("counters", {}).get("frames_out"),
                             "frame_errors": last.get("counters", {}).get("frame_errors", 0),
                             "source": last.get("source")}
        from edge_app.datasets import read_coco, read_voc
        from edge_app.datasets.base import DatasetError
        (t / "voc" / "images").mkdir(parents=True)
        (t / "voc" / "annotations").mkdir()
        (t / "voc" / "annotations" / "x.xml").write_text("<annotation><object>")
        results["malformed voc"] = read_voc(t / "voc").issues.summary()
        (t / "bad.json").write_text('{"images": [], "annotations": [{"id": 1}], "categories": []}')
        try:
            read_coco(t / "bad.json")
        except DatasetError as exc:
            results["malformed coco"] = str(exc)
    for k, v in results.items():
        print(f"{k}: {v}")
    print("SUMMARY inputs: " + "; ".join(f"{k}: " + (f"exit {v['exit']}" if isinstance(v, dict) else "reported")
                                         for k, v in results.items()))
    return {"benchmark": "bad_inputs", "results": results}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("soak").add_argument("--minutes", type=float, default=30)
    sub.add_parser("faults").add_argument("--restarts", type=int, default=20)
    sub.add_parser("inputs")
    a = p.parse_args()
    result = {"soak": lambda: soak(a.minutes), "faults": lambda: faults(a.restarts), "inputs": inputs}[a.what]()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
