"""NMS benchmark: edge_app.core.nms.batched_nms against torchvision.ops.batched_nms (same process).

Not a test: prints times and ratios (ours / torchvision; goal <= 1.0) for 1k, 5k and 20k boxes on two box
distributions, and for the candidates of one real tiled frame (the COCO detector on a MOT17 frame, 3x2
tiles + the whole frame: every NMS call of that frame, per tile and the merge, at the runtime's default
threshold), after asserting that both keep the same boxes. "ours" is batched_nms as the runtime runs it
(ONNX Runtime's kernel lent for 32..3000 boxes, the numpy sweep elsewhere); "numpy only" is core.nms with
no kernel. All run on one thread, taking turns call by call in a rotating order (load from elsewhere falls
on all alike), and the whole measurement is repeated (``--repeats``): each row gives the median ratio and
the spread of the runs, the noise of a shared machine. Run:
`python tests/benchmarks/bench_nms.py [--repeats 3]`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge_app.backends.cpu import cpu_info  # noqa: E402
import edge_app.core.nms as nms_mod  # noqa: E402
from edge_app.backends.ort_nms import install as install_nms_kernel  # noqa: E402
from edge_app.core.nms import batched_nms  # noqa: E402

MOT_FRAME = ROOT.parent / "shared" / "data" / "mot" / "MOT17-04-FRCNN-mini" / "img1" / "000001.jpg"


def detector_like(rng: np.random.Generator, n: int, num_classes: int = 20) -> tuple[np.ndarray, ...]:
    """Boxes clustered around objects, as a detector's raw output before NMS looks."""
    objects = max(1, n // 40)
    centres = rng.uniform(0, 1280, (objects, 2))
    sizes = rng.uniform(20, 300, (objects, 2))
    cls_of = rng.integers(0, num_classes, objects)
    which = rng.integers(0, objects, n)
    c = centres[which] + rng.normal(0, 0.15, (n, 2)) * sizes[which]
    wh = sizes[which] * rng.uniform(0.7, 1.3, (n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    classes = np.where(rng.random(n) < 0.9, cls_of[which], rng.integers(0, num_classes, n))
    return boxes, scores, classes


def uniform(rng: np.random.Generator, n: int, num_classes: int = 20) -> tuple[np.ndarray, ...]:
    xy = rng.uniform(0, 1000, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 120, (n, 2))], 1).astype(np.float32)
    return boxes, rng.uniform(0, 1, n).astype(np.float32), rng.integers(0, num_classes, n)


def tiled_frame_calls() -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """Every batched_nms call of one tiled frame (3x2 + the whole frame) of the COCO detector on a real
    MOT17 frame, as (boxes, scores, groups, iou): one per tile and the merge over all tiles."""
    import cv2

    import edge_app.decoders.merge as merge_mod
    from edge_app.inference.models import open_artifact
    from edge_app.frames.tiles import TileSpec

    calls: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
    original = nms_mod.batched_nms

    def record(boxes, scores, classes, iou):
        calls.append((np.array(boxes, np.float32), np.array(scores, np.float32), np.array(classes, np.int64), iou))
        return original(boxes, scores, classes, iou)

    model = open_artifact(ROOT / "edge_app" / "demo" / "coco.onnx", tiles=TileSpec(3, 2))
    frame = cv2.imread(str(MOT_FRAME))
    nms_mod.batched_nms, merge_mod.batched_nms = record, record
    try:
        model.predict(frame)
    finally:
        nms_mod.batched_nms, merge_mod.batched_nms = original, original
    return calls


def _interleaved(fns, repeats: int) -> list[float]:
    """Median seconds of each function, taking turns call by call, the order rotated every round (what
    runs just before, and its caches, falls on all alike)."""
    times: list[list[float]] = [[] for _ in fns]
    for k in range(repeats):
        for j in range(len(fns)):
            i = (j + k) % len(fns)
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3, help="whole measurements (the spread is the noise)")
    a = p.parse_args()
    try:
        import torch
        import torchvision
    except ImportError:
        print("bench_nms: needs torch + torchvision (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    # One thread, as ours: torchvision's NMS kernel is one loop, and idle OpenMP workers of torch's pool
    # spin after each call, taking the second core from whatever runs next (measured: ours 1.4x slower
    # when always run right after torchvision on 2 threads, 0.8x in random order).
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cases: list[tuple[str, int, list]] = []
    for dist_name, make in (("detector-like", detector_like), ("uniform", uniform)):
        for n in (1000, 5000, 20000):
            b, s, c = make(rng, n)
            cases.append((dist_name, n, [(b, s, c, 0.5)]))
    if MOT_FRAME.is_file():
        calls = tiled_frame_calls()
        cases.append((f"tiled frame ({len(calls)} calls)", sum(len(x[0]) for x in calls), calls))
    else:
        print(f"bench_nms: {MOT_FRAME} not here: the tiled frame's row is left out", file=sys.stderr)
    # As the runtime runs it: the ONNX Runtime backend lends core.nms its kernel for mid-size inputs.
    install_nms_kernel()
    lent = nms_mod.kernel()
    cpu = cpu_info().describe()
    rows = []
    for name, n, calls in cases:
        tensors = [tuple(torch.from_numpy(x) for x in call[:3]) + (call[3],) for call in calls]
        kept = 0
        for (b, s, c, iou), (tb, ts, tc, _) in zip(calls, tensors):
            ours = batched_nms(b, s, c, iou)
            theirs = torchvision.ops.batched_nms(tb, ts, tc, iou).numpy()
            assert sorted(ours.tolist()) == sorted(theirs.tolist()), f"{name}: kept boxes differ"
            kept += len(ours)

        def run_ours():
            for b, s, c, iou in calls:
                batched_nms(b, s, c, iou)

        def run_numpy():  # core.nms without the kernel: what runs where ONNX Runtime is not loaded
            nms_mod.use_kernel(None)
            try:
                run_ours()
            finally:
                nms_mod.use_kernel(lent)

        def run_theirs():
            for tb, ts, tc, iou in tensors:
                torchvision.ops.batched_nms(tb, ts, tc, iou)

        reps = 31 if n <= 5000 else 7
        runs = [_interleaved([run_ours, run_theirs, run_numpy], reps) for _ in range(a.repeats)]
        ratios = [o / t for o, t, _ in runs]
        ratio = statistics.median(ratios)
        numpy_ratio = statistics.median(p / t for _, t, p in runs)
        o_ms = statistics.median(o for o, _, _ in runs) * 1e3
        t_ms = statistics.median(t for _, t, _ in runs) * 1e3
        rows.append({"boxes": n, "distribution": name, "kept": kept, "ours_ms": o_ms, "torchvision_ms": t_ms,
                     "ratio": ratio, "ratio_runs": [round(r, 3) for r in ratios], "numpy_only_ratio": numpy_ratio})
        print(f"{name:>24} {n:>6} boxes  kept {kept:>5}  ours {o_ms:8.3f} ms  torchvision {t_ms:8.3f} ms  ratio "
              f"{ratio:5.2f} (runs {', '.join(f'{r:.2f}' for r in ratios)}; numpy only {numpy_ratio:.2f})",
              flush=True)
    worst = max(r["ratio"] for r in rows)
    print(f"SUMMARY nms: worst ratio ours/torchvision {worst:.2f} (goal <= 1.00), torch threads "
          f"{torch.get_num_threads()}, CPU {cpu}")
    print(json.dumps({"benchmark": "nms", "rows": rows, "worst_ratio": worst, "cpu": cpu, "repeats": a.repeats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
