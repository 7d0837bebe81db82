"""Cost and gain of tiled inference (``python tests/benchmarks/bench_tiles.py``, ~5 min on 2 cores).

The shipped COCO detector (NanoDet, edge_app/demo/coco.onnx, FP32 and the INT8 calibrate chose) on the
shared MOT17 ``*-mini`` frames (22 frames, 493 labelled pedestrians; distractors as crowd regions):
person AP50 / AP / AR100 (COCO rules, the runtime's own preprocessing, decoder and merge) and ms per
frame (the whole ``predict``: preprocessing every tile, one batched inference call, decode, merge;
median over the frames, after a warm-up) for the whole frame, 2x2, 3x2 and 3x2 + the whole frame (20 %
overlap), ratios against the full frame measured in the same process. Writes bench/tiles.json.

In-sample caveat: 3x2 at 20 % overlap was picked from ../shared/notes/pretrained.md, measured on these
same frames; nothing else was tuned, and AP itself needs no threshold.
"""
from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from calibration.calibrate import machine_description  # noqa: E402
from calibration.evaluate import open_for_eval, run_detection  # noqa: E402
from conversion.people import mot_people  # noqa: E402
from edge_app.datasets import load_image, open_dataset  # noqa: E402
from edge_app.inference.tiles import TileSpec  # noqa: E402

SETTINGS = {"full frame": TileSpec(), "2x2": TileSpec(2, 2, 0.2, False), "3x2": TileSpec(3, 2, 0.2, False),
            "3x2 + full": TileSpec(3, 2, 0.2, True)}


def main() -> int:
    mot = ROOT.parent / "shared" / "data" / "mot"
    data = ROOT / "var" / "data" / "mot17-mini-person.json"
    mot_people(sorted(mot.glob("MOT17-*-mini")), data, "person")
    ds = open_dataset(data)
    images = [load_image(s.image_path) for s in ds.samples]
    rows = []
    for precision, path in (("fp32", "coco.onnx"), ("int8", "coco.int8.onnx")):
        for name, spec in SETTINGS.items():
            model = open_for_eval(ROOT / "edge_app" / "demo" / path, tiles=spec)
            stats = run_detection(model, ds, progress=False).report().stats_dict()
            model.predict(images[0])
            times = []
            for im in images:
                t0 = time.perf_counter()
                model.predict(im)
                times.append((time.perf_counter() - t0) * 1e3)
            row = {"precision": precision, "setting": name, "tiles": len(model.prepare(images[0])[0]),
                   "AP50": round(stats["AP50"], 4), "AP": round(stats["AP"], 4), "AR100": round(stats["AR100"], 4),
                   "ms_per_frame": round(statistics.median(times), 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = {r["precision"]: r["ms_per_frame"] for r in rows if r["setting"] == "full frame"}
    for r in rows:
        r["cost_vs_full"] = round(r["ms_per_frame"] / base[r["precision"]], 2)
    out = {"created": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_description(), "host": platform.node(),
           "frames": len(images), "threads": 2, "rows": rows}
    (ROOT / "bench").mkdir(exist_ok=True)
    (ROOT / "bench" / "tiles.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'precision':<9} {'setting':<11} {'tiles':>5} {'AP50':>6} {'AP':>6} {'AR100':>6} {'ms/frame':>9} {'cost':>5}")
    for r in rows:
        print(f"{r['precision']:<9} {r['setting']:<11} {r['tiles']:>5} {r['AP50']:>6.3f} {r['AP']:>6.3f} {r['AR100']:>6.3f} "
              f"{r['ms_per_frame']:>9.1f} {r['cost_vs_full']:>5.2f}x")
    print(f"CPU: {out['machine']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
