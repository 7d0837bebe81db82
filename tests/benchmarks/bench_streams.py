"""Several cameras in one process, measured (issue: batched inference across streams).

1. batch: inference time per frame, one call with a batch of N vs N single calls, for each shipped model
   on ONNX Runtime CPU (dynamic-batch copies made by `edge-app build --dynamic-batch`), N = 2, 4, 8;
   medians of interleaved rounds.
2. scale: aggregate fps of N = 1, 2, 4, 8 streams in one `edge-app run` process vs N processes of one
   stream each: the real clip (file source, `realtime = false`: every frame, as fast as it goes) and the
   person detector, the same artifact in both. Goal: one process >= 1.2x the N processes at N = 4.
3. fairness: min/max per-stream fps of 4 equal streams (every frame, one process); frame age p50/p99 per
   stream with 4 live 15 fps streams (the synthetic scene and the shapes detector).
4. memory: RSS of one process with 8 streams vs 1.

Run: `python tests/benchmarks/bench_streams.py [--seconds 12] [--rounds 3] [--part batch,scale,fairness,memory]`
(about 20 minutes). Prints a line per result and a JSON line per part for run_all.py.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
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
CLIP = DEMO / "people.mp4"


def dynamic_copies(folder: Path) -> Path:
    """The shipped demo models with a dynamic batch axis (the shipped files may already have one)."""
    from conversion.batch_axis import dynamic_family
    from edge_app.core.artifact import read_meta
    from edge_app.inference.models import open_artifact

    for f in DEMO.iterdir():
        if f.suffix in (".onnx", ".json"):
            shutil.copy(f, folder / f.name)
    for name in ("detector", "segmenter", "person", "person-seg"):
        if open_artifact(folder / f"{name}.onnx").max_batch is not None:
            dynamic_family(folder / f"{name}.onnx")
        read_meta(folder / f"{name}.onnx")
    return folder


def bench_batch(models: Path, rounds: int = 7) -> dict:
    import numpy as np

    from edge_app.inference.models import open_artifact
    from edge_app.datasets.synthetic import make_sample

    rng = np.random.default_rng(0)
    images = [make_sample(rng, 640, 480).image for _ in range(8)]
    rows = []
    for name in ("detector", "segmenter", "person", "person-seg"):
        model = open_artifact(models / f"{name}.onnx", threads=2)
        for n in (2, 4, 8):
            batch_t, single_t = [], []
            model.predict_batch(images[:n])
            for _ in range(rounds):  # interleaved: both see the same machine load
                t0 = time.perf_counter()
                model.predict_batch(images[:n])
                t1 = time.perf_counter()
                for image in images[:n]:
                    model.predict(image)
                t2 = time.perf_counter()
                batch_t.append((t1 - t0) / n)
                single_t.append((t2 - t1) / n)
            b, s = statistics.median(batch_t) * 1e3, statistics.median(single_t) * 1e3
            rows.append({"model": name, "n": n, "batch_ms_per_frame": round(b, 2),
                         "single_ms_per_frame": round(s, 2), "speedup": round(s / b, 3)})
            print(f"batch: {name} N={n}: {b:.1f} ms/frame batched, {s:.1f} ms/frame single: x{s / b:.2f}", flush=True)
        model.close()
    return {"benchmark": "streams_batch", "rows": rows}


def config(folder: Path, port: int, streams: list[dict], models: str) -> Path:
    lines = [f'[output.http]\nport = {port}\n[labels]\nsample_every = 0\n[logging]\nfile = ""\nlevel = "warning"\n',
             models]
    for s in streams:
        lines.append("[[streams]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in s.items()))
    path = folder / f"bench-{port}.toml"
    path.write_text("\n".join(lines))
    return path


def person(models: Path) -> str:
    return f'[models.person]\nkind = "detector"\nartifact = "{models / "person.onnx"}"\n'


def shapes(models: Path) -> str:
    return f'[models.detector]\nkind = "detector"\nartifact = "{models / "detector.onnx"}"\n'


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, cfg: Path, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(cfg)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=10) as r:
            return json.loads(r.read())

    def wait_frames(self, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with contextlib.suppress(OSError, ValueError):
                st = self.status()["streams"]
                if st and all(s["frames"] > 0 for s in st.values()):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"no frames on port {self.port}")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextlib.contextmanager
def running(folder: Path, groups: list[tuple[list[dict], str]]) -> Iterator[list[Proc]]:
    """One process per (streams, models) group, started together, each with its first frames out."""
    procs = []
    try:
        for streams, models in groups:
            port = free_port()
            procs.append(Proc(config(folder, port, streams, models), port))
        for p in procs:
            p.wait_frames()
        yield procs
    finally:
        for p in procs:
            p.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_stream_fps(procs: list[Proc], seconds: float, warm: float = 4.0, cpu: list | None = None) -> dict[str, float]:
    """Frames per second of every stream of every process over the same window; ``cpu`` receives the
    CPU seconds the processes used in it (on a shared machine, frames per CPU second is what the
    processes' own work costs, whatever share of the cores the scheduler gave them)."""
    time.sleep(warm)
    t0 = time.monotonic()
    first = [{n: s["frames"] for n, s in p.status()["streams"].items()} for p in procs]
    c0 = sum(cpu_seconds(p.proc.pid) for p in procs)
    time.sleep(seconds)
    last = [{n: s["frames"] for n, s in p.status()["streams"].items()} for p in procs]
    c1 = sum(cpu_seconds(p.proc.pid) for p in procs)
    dt = time.monotonic() - t0
    if cpu is not None:
        cpu.append(c1 - c0)
    return {f"{i}:{n}": (last[i][n] - first[i][n]) / dt for i in range(len(procs)) for n in first[i]}


def clip(name: str) -> dict:
    return {"name": name, "uri": f"file://{CLIP}", "width": 768, "height": 432, "fps": 10.0, "realtime": False,
            "loop": True}


def bench_scale(folder: Path, models: Path, seconds: float, rounds: int = 3,
                counts: tuple[int, ...] = (1, 2, 4, 8)) -> dict:
    """Alternating runs (one process, N processes, one, ...): the machine's drift hits both alike; medians."""
    rows = []
    for n in counts:
        streams = [clip(f"s{i}") for i in range(n)]
        ones, manys, cpu_one, cpu_many = [], [], [], []
        for _ in range(rounds):
            with running(folder, [(streams, person(models))]) as procs:
                ones.append(sum(per_stream_fps(procs, seconds, cpu=cpu_one).values()))
            with running(folder, [([s], person(models)) for s in streams]) as procs:
                manys.append(sum(per_stream_fps(procs, seconds, cpu=cpu_many).values()))
        one, many = statistics.median(ones), statistics.median(manys)
        # frames per CPU second, each run's own
        eff_one = statistics.median(f * seconds / c for f, c in zip(ones, cpu_one) if c > 0)
        eff_many = statistics.median(f * seconds / c for f, c in zip(manys, cpu_many) if c > 0)
        rows.append({"streams": n, "one_process_fps": round(one, 2), "n_processes_fps": round(many, 2),
                     "one_process_frames_per_cpu_s": round(eff_one, 2), "n_processes_frames_per_cpu_s": round(eff_many, 2),
                     "cpu_ratio": round(eff_one / eff_many, 3), "cpu_s_one": [round(c, 1) for c in cpu_one],
                     "cpu_s_n": [round(c, 1) for c in cpu_many],
                     "ratio": round(one / many, 3) if many else None, "rounds": rounds,
                     "one_runs": [round(x, 1) for x in ones], "n_runs": [round(x, 1) for x in manys]})
        print(f"scale: {n} streams: one process {one:.1f} fps, {n} processes {many:.1f} fps (medians of {rounds}: "
              f"{[round(x, 1) for x in ones]} vs {[round(x, 1) for x in manys]}): x{one / many:.2f}; frames per CPU "
              f"second {eff_one:.1f} vs {eff_many:.1f}: x{eff_one / eff_many:.2f} (CPU s {[round(c, 1) for c in cpu_one]} "
              f"vs {[round(c, 1) for c in cpu_many]})", flush=True)
    from edge_app.backends.cpu import cpu_info
    return {"benchmark": "streams_scale", "rows": rows, "model": "person (imported SSDLite-MobileNetV2)",
            "source": "people.mp4, realtime = false", "cpu": cpu_info().describe()}


def bench_fairness(folder: Path, models: Path, seconds: float) -> dict:
    with running(folder, [([clip(f"s{i}") for i in range(4)], person(models))]) as procs:
        fps = per_stream_fps(procs, seconds)
    fairness = min(fps.values()) / max(fps.values())
    print(f"fairness: 4 equal streams, every frame: per-stream fps {sorted(round(v, 2) for v in fps.values())}, "
          f"min/max {fairness:.3f} (goal >= 0.9)", flush=True)
    live = [{"name": f"s{i}", "uri": f"synthetic://?seed={i + 1}", "width": 640, "height": 480, "fps": 15.0}
            for i in range(4)]
    with running(folder, [(live, shapes(models))]) as procs:
        live_fps = per_stream_fps(procs, seconds)
        st = procs[0].status()["streams"]
    ages = {n: {k: s["latency_ms"]["frame_age"][k] for k in ("p50", "p99")} for n, s in st.items()}
    print(f"fairness: 4 live 15 fps streams: fps {sorted(round(v, 1) for v in live_fps.values())}, frame age "
          + ", ".join(f"{n} p50 {a['p50']:.0f} / p99 {a['p99']:.0f} ms" for n, a in ages.items()), flush=True)
    return {"benchmark": "streams_fairness", "every_frame_fps": {k: round(v, 2) for k, v in fps.items()},
            "min_max": round(fairness, 3), "live_fps": {k: round(v, 2) for k, v in live_fps.items()},
            "frame_age_ms": ages}


def bench_memory(folder: Path, models: Path) -> dict:
    out = {}
    for n in (1, 8):
        with running(folder, [([clip(f"s{i}") for i in range(n)], person(models))]) as procs:
            time.sleep(4)
            out[n] = procs[0].rss_mb()
    print(f"memory: RSS 1 stream {out[1]:.0f} MB, 8 streams {out[8]:.0f} MB (x{out[8] / out[1]:.2f})", flush=True)
    return {"benchmark": "streams_memory", "rss_mb_1": round(out[1], 1), "rss_mb_8": round(out[8], 1),
            "ratio": round(out[8] / out[1], 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=12.0, help="measurement window of each run")
    p.add_argument("--part", default="batch,scale,fairness,memory")
    p.add_argument("--rounds", type=int, default=3, help="alternating runs of each side of the scale part")
    p.add_argument("--streams", default="1,2,4,8", help="stream counts of the scale part")
    a = p.parse_args()
    parts = a.part.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = dynamic_copies(folder / "models" if (folder / "models").mkdir() is None else folder)
        results = []
        if "batch" in parts:
            results.append(bench_batch(models))
        if "scale" in parts:
            results.append(bench_scale(folder, models, a.seconds, a.rounds, tuple(int(x) for x in a.streams.split(","))))
        if "fairness" in parts:
            results.append(bench_fairness(folder, models, a.seconds))
        if "memory" in parts:
            results.append(bench_memory(folder, models))
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
