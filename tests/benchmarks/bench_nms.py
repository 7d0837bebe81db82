"""NMS benchmark: edge_app.core.nms.batched_nms against torchvision.ops.batched_nms (same process).

Not a test: prints times and ratios (ours / torchvision; goal <= 1.0) for 1k, 5k and 20k boxes, on two
box distributions, after asserting that both keep the same boxes. Run: `python tests/benchmarks/bench_nms.py`.
"""
from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

from edge_app.core.nms import batched_nms


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


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) if len(times) < 5 else statistics.median(times)


def main() -> int:
    try:
        import torch
        import torchvision
    except ImportError:
        print("bench_nms: needs torch + torchvision (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    rows = []
    for dist_name, make in (("detector-like", detector_like), ("uniform", uniform)):
        for n in (1000, 5000, 20000):
            boxes, scores, classes = make(rng, n)
            tb, ts, tc = (torch.from_numpy(a) for a in (boxes, scores, classes))
            ours = batched_nms(boxes, scores, classes, 0.5)
            theirs = torchvision.ops.batched_nms(tb, ts, tc, 0.5).numpy()
            assert sorted(ours.tolist()) == sorted(theirs.tolist()), "kept boxes differ"
            repeats = 21 if n <= 5000 else 7
            t_ours = best_of(lambda: batched_nms(boxes, scores, classes, 0.5), repeats)
            t_tv = best_of(lambda: torchvision.ops.batched_nms(tb, ts, tc, 0.5), repeats)
            rows.append({"boxes": n, "distribution": dist_name, "kept": int(len(ours)),
                         "ours_ms": t_ours * 1e3, "torchvision_ms": t_tv * 1e3, "ratio": t_ours / t_tv})
            print(f"{dist_name:>14} {n:>6} boxes  kept {len(ours):>5}  ours {t_ours * 1e3:8.2f} ms  "
                  f"torchvision {t_tv * 1e3:8.2f} ms  ratio {t_ours / t_tv:5.2f}", flush=True)
    worst = max(r["ratio"] for r in rows)
    print(f"SUMMARY nms: worst ratio ours/torchvision {worst:.2f} (goal <= 1.00), "
          f"torch threads {torch.get_num_threads()}")
    print(json.dumps({"benchmark": "nms", "rows": rows, "worst_ratio": worst}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
