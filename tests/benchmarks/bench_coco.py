"""COCO evaluation time: faster-coco-eval (what `edge-app evaluate`/calibrate use) and our numpy core,
against plain pycocotools on the same detections, identical stats asserted. Goal: >= 2.5x faster.
Run: `python tests/benchmarks/bench_coco.py`."""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from calibration.coco import coco_stats


def dataset(seed: int = 0, images: int = 500, cats: int = 5) -> tuple[dict, list]:
    rng = np.random.default_rng(seed)
    imgs, anns, dets = [], [], []
    for i in range(1, images + 1):
        imgs.append({"id": i, "width": 640, "height": 480})
        for _ in range(int(rng.integers(0, 12))):
            w, h = rng.uniform(8, 200, 2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            c = int(rng.integers(1, cats + 1))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": int(rng.random() < 0.03)})
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 0.1, 4) * [w, h, w, h]
                dets.append({"image_id": i, "category_id": c if rng.random() < 0.9 else int(rng.integers(1, cats + 1)),
                             "bbox": [x + j[0], y + j[1], max(1, w + j[2]), max(1, h + j[3])],
                             "score": float(rng.random())})
        for _ in range(int(rng.integers(0, 8))):
            w, h = rng.uniform(8, 150, 2)
            dets.append({"image_id": i, "category_id": int(rng.integers(1, cats + 1)),
                         "bbox": [rng.uniform(0, 600), rng.uniform(0, 440), w, h], "score": float(rng.random())})
    return {"images": imgs, "annotations": anns, "categories": [{"id": c, "name": f"c{c}"} for c in
                                                                   range(1, cats + 1)]}, dets


def timed(backend: str, gt: dict, dets: list, repeats: int = 3) -> tuple[float, list]:
    best, stats = float("inf"), []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stats = coco_stats(gt, dets, backend)["stats"]
        best = min(best, time.perf_counter() - t0)
    return best, stats


def main() -> int:
    gt, dets = dataset()
    t_ref, ref = timed("pycocotools", gt, dets)
    rows = [{"backend": "pycocotools", "seconds": t_ref, "speedup": 1.0}]
    for backend in ("faster_coco_eval", "edge_app.core"):
        t, stats = timed(backend, gt, dets, repeats=3 if backend != "edge_app.core" else 1)
        assert np.allclose(stats, ref, atol=1e-6), f"{backend} stats differ: {stats} vs {ref}"
        rows.append({"backend": backend, "seconds": t, "speedup": t_ref / t})
    for r in rows:
        print(f"{r['backend']:>17}: {r['seconds'] * 1e3:8.1f} ms  speedup vs pycocotools {r['speedup']:5.2f}x")
    fast = next(r for r in rows if r["backend"] == "faster_coco_eval")
    print(f"SUMMARY coco: faster-coco-eval {fast['speedup']:.2f}x pycocotools on {len(gt['images'])} images, "
          f"{len(dets)} detections, identical stats (goal >= 2.5x)")
    print(json.dumps({"benchmark": "coco", "images": len(gt["images"]), "detections": len(dets), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
