"""What a candidate model in shadow costs the live stream (edge_app.rollout.shadow).

A real ``edge-app run`` on the synthetic scene with ``realtime = false`` (every frame, as fast as the models
go: the stream is CPU bound, so any CPU the candidate takes would show as lost fps), the demo detector live,
sampling 1 in 30 for labelling. Rounds alternate without and with a candidate (the demo detector again, at
the default ``shadow_every`` = 10 and ``shadow_share`` = 0.25), each ``--seconds`` long after a warm-up; the
live fps is read from ``/status`` (frames through the outputs over the window). Reports the medians and
the ratio with / without (goal >= 0.9), the candidate's measured CPU share and runs.

On a machine shared with other jobs the CPU a process gets moves by tens of percent from one minute to the
next, so: rounds go in ABBA order (without, with, with, without, ...: a drift of the load hits both arms
alike), every round records the 1-minute load average and the process' own CPU time over the window
(``/proc/<pid>/stat``), and besides the fps ratio the report gives the *frames per CPU second* ratio, which
does not depend on how much CPU the scheduler granted: it is the candidate's cost (its CPU and anything it
makes the live threads do or wait for) per live frame. ``--sample-every 0`` measures the candidate on 1 in
``shadow_every`` frames alone (no sampling for labelling).

Run: `python tests/benchmarks/bench_shadow.py [--rounds 4] [--seconds 15] [--sample-every 30]`; writes
bench/shadow.json (``--out`` elsewhere).
"""
from __future__ import annotations

import argparse
import json
import os
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


def _config(folder: Path, port: int, candidate: bool, sample_every: int = 30) -> Path:
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
sample_every = {sample_every}
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


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(candidate: bool, seconds: float, warmup: float, sample_every: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = _config(Path(tmp), port, candidate, sample_every)
        proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(cfg),
                                 "--max-seconds", str(seconds + warmup + 60)], cwd=ROOT,
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
            a, c0, t0 = _status(port), _cpu_s(proc.pid), time.monotonic()
            time.sleep(seconds)
            b, c1, t1 = _status(port), _cpu_s(proc.pid), time.monotonic()
        finally:
            proc.terminate()
            proc.wait(20)
    frames = b["counters"]["frames_out"] - a["counters"]["frames_out"]
    cand = (b["models"]["detector"] or {}).get("candidate") or {}
    return {"fps": round(frames / (t1 - t0), 2), "cpu": round((c1 - c0) / (t1 - t0), 3),
            "frames_per_cpu_s": round(frames / max(1e-6, c1 - c0), 2), "load": os.getloadavg()[0],
            "shadow": cand.get("shadow")}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=4, help="pairs of rounds, in ABBA order")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--sample-every", type=int, default=30, help="sampling for labelling (0: none)")
    p.add_argument("--out", default=str(ROOT / "bench" / "shadow.json"))
    a = p.parse_args()
    without, with_ = [], []
    for i in range(a.rounds):
        order = (False, True) if i % 2 == 0 else (True, False)
        got = {c: one(c, a.seconds, a.warmup, a.sample_every) for c in order}
        without.append(got[False])
        with_.append(got[True])
        print(f"round {i + 1} ({'without first' if i % 2 == 0 else 'with first'}): without {got[False]['fps']} fps "
              f"({got[False]['frames_per_cpu_s']} frames/CPU s, load {got[False]['load']:.1f}), with "
              f"{got[True]['fps']} fps ({got[True]['frames_per_cpu_s']} frames/CPU s, load {got[True]['load']:.1f}), "
              f"shadow {got[True]['shadow']}", flush=True)

    def med(rows: list[dict], key: str) -> float:
        return float(np.median([r[key] for r in rows]))

    f0, f1 = med(without, "fps"), med(with_, "fps")
    e0, e1 = med(without, "frames_per_cpu_s"), med(with_, "frames_per_cpu_s")
    pairs = [w["fps"] / o["fps"] for w, o in zip(with_, without)]
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")),
                 platform.processor())
    loads = [r["load"] for r in without + with_]
    out = {"fps_without": f0, "fps_with": f1, "ratio": round(f1 / f0, 3),
           "ratio_per_round": [round(x, 3) for x in pairs], "ratio_median_of_rounds": round(float(np.median(pairs)), 3),
           "frames_per_cpu_s_without": e0, "frames_per_cpu_s_with": e1, "cpu_ratio": round(e1 / e0, 3),
           "load_average": [round(min(loads), 1), round(max(loads), 1)], "rounds": a.rounds, "seconds": a.seconds,
           "sample_every": a.sample_every, "without": without, "with": with_, "cpu": model,
           "cores": len(os.sched_getaffinity(0))}
    print(json.dumps({k: v for k, v in out.items() if k not in ("without", "with")}))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"live fps with a candidate in shadow: {f1:.1f} vs {f0:.1f} without: {f1 / f0:.3f} (goal >= 0.9); "
          f"frames per CPU second {e1:.1f} vs {e0:.1f}: {e1 / e0:.3f}; load average {min(loads):.1f}-{max(loads):.1f} "
          f"on {out['cores']} cores ({model})")
    return 0 if f1 / f0 >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
