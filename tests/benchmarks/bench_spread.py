"""Work over the cores: a tiled frame's images through each backend three ways (``inference.dispatch``: one
batched call, one call per image in turn, calls in flight), against the whole frame's time on the same
backend and file (``python tests/benchmarks/bench_spread.py [--repeats 3] [--frames 6]``, ~5 min on 2 cores).

The COCO detector (edge_app/demo/coco.onnx FP32 and coco.int8.onnx) on real MOT17 ``*-mini`` frames, the
whole ``predict`` (preprocessing every tile, inference, decoding, the merge): 3x2 tiles + the whole frame
(7 images) against the whole frame alone. Goal: the tiled frame <= 5x the whole frame's time. The full
frame, and each way of the tiled frame, take turns frame by frame (load from elsewhere falls on all alike);
the whole measurement is repeated, each row giving the median and the runs (the noise of a shared machine).
``auto`` is what ``runtime.batching = "auto"`` keeps at start (``NetworkModel.measure_modes``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge_app.backends import installed  # noqa: E402
from edge_app.backends.cpu import cpu_info  # noqa: E402
from edge_app.datasets import load_image  # noqa: E402
from edge_app.inference import dispatch  # noqa: E402
from edge_app.inference.models import open_artifact  # noqa: E402
from edge_app.frames.tiles import TileSpec  # noqa: E402

MOT = ROOT.parent / "shared" / "data" / "mot"
TILES = TileSpec(3, 2, 0.2, True)


def frames(count: int) -> list:
    paths = [p for seq in sorted(MOT.glob("MOT17-*-mini")) for p in sorted((seq / "img1").glob("*.jpg"))[:2]]
    return [load_image(p) for p in paths[:count]]


def one_run(backend: str, path: Path, images: list, threads: int) -> dict:
    full = open_artifact(path, backend=backend, threads=threads)
    tiled = open_artifact(path, backend=backend, threads=threads, tiles=TILES)
    spread = open_artifact(path, backend=backend, threads=threads, tiles=TILES, requests=min(2, threads))
    spread.mode = "requests"
    ways = {"full": (full, None), "frames": (tiled, "frames"), "batch": (tiled, "batch"), "requests": (spread, None)}
    for model, mode in ways.values():
        if mode:
            model.mode = mode
        model.predict(images[0])  # warm-up: buffers for the batch sizes
    times: dict[str, list[float]] = {k: [] for k in ways}
    for im in images:
        for name, (model, mode) in ways.items():
            if mode:
                model.mode = mode
            t0 = time.perf_counter()
            model.predict(im)
            times[name].append(time.perf_counter() - t0)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    auto = open_artifact(path, backend=backend, threads=threads, tiles=TILES)
    chosen = auto.measure_modes(1)["mode"]
    for m in (full, tiled, spread, auto):
        m.close()
    return {"ms": ms, "auto": chosen}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    images = frames(a.frames)
    if not images:
        print(f"bench_spread: no MOT17 *-mini frames under {MOT}", file=sys.stderr)
        return 2
    cpu = cpu_info().describe()
    rows = []
    backends = [b for b in ("onnxruntime", "openvino") if installed(b)]
    for backend in backends:
        for precision, name in (("fp32", "coco.onnx"), ("int8", "coco.int8.onnx")):
            runs = [one_run(backend, ROOT / "edge_app" / "demo" / name, images, a.threads) for _ in range(a.repeats)]
            ratios = {m: [r["ms"][m] / r["ms"]["full"] for r in runs] for m in dispatch.MODES}
            best = min(dispatch.MODES, key=lambda m: statistics.median(ratios[m]))
            row = {"backend": backend, "precision": precision, "images_per_frame": 7,
                   "full_ms": round(statistics.median(r["ms"]["full"] for r in runs), 1),
                   **{f"{m}_ms": round(statistics.median(r["ms"][m] for r in runs), 1) for m in dispatch.MODES},
                   **{f"{m}_ratio": round(statistics.median(ratios[m]), 2) for m in dispatch.MODES},
                   "ratio_runs": {m: [round(x, 2) for x in ratios[m]] for m in dispatch.MODES},
                   "best": best, "auto": [r["auto"] for r in runs]}
            rows.append(row)
            print(f"{backend:>11} {precision}: full {row['full_ms']:.1f} ms; 3x2+full "
                  + ", ".join(f"{m} {row[f'{m}_ms']:.1f} ms ({row[f'{m}_ratio']:.2f}x, runs "
                              f"{'/'.join(f'{x:.2f}' for x in ratios[m])})" for m in dispatch.MODES)
                  + f"; auto chose {row['auto']}", flush=True)
    best = min(min(r[f"{m}_ratio"] for m in dispatch.MODES) for r in rows)
    print(f"SUMMARY spread: 3x2 + full tiled frame at best {best:.2f}x the whole frame's time (goal <= 5), CPU {cpu}")
    print(json.dumps({"benchmark": "spread", "rows": rows, "cpu": cpu, "repeats": a.repeats, "frames": len(images)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
