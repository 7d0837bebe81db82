"""Cost and gain of tiled inference (``python tests/benchmarks/bench_tiles.py``, ~6 min on 2 cores).

The shipped COCO detector (NanoDet, edge_app/demo/coco.onnx, FP32 and the INT8 calibrate chose, whose
calibration images were whole frames) on the shared MOT17 ``*-mini`` frames (22 frames, 493 labelled
pedestrians; distractors as crowd regions): person AP50 / AP / AR100 (COCO rules, the runtime's own
preprocessing, decoder and merge) and ms per frame (the whole ``predict``: preprocessing every tile, one
batched inference call, decode, merge) for the whole frame, 2x2, 3x2 and 3x2 + the whole frame (20 %
overlap). With ``--int8-tiles ONNX``: an INT8 built for tiles too, e.g. by

    edge-app build var/coco-tiles-3x2/coco.onnx --tiles 3,2 --no-full-frame --precisions int8 \
        --data var/data/coco-calib.json --val-data var/data/mot17-mini-person.json --count 48

(a copy of coco.onnx + coco.json in its own folder: build writes coco.int8.onnx beside it; its INT8
calibration images are the 3x2 tiles of the calibration frames), run on the tiled settings.

Timing takes turns: every model is loaded first, then each frame goes through every model in turn (two
rounds after a warm-up), so a busy minute on this shared CPU falls on all settings alike; the median per
frame is reported, with ratios against the whole frame of the same precision. Writes bench/tiles.json.

In-sample caveat: 3x2 at 20 % overlap was picked from ../shared/notes/pretrained.md, measured on these
same frames; nothing else was tuned, and AP itself needs no threshold. The INT8 gate (build's) judges on
these same frames too.
"""
from __future__ import annotations

import argparse
import json
import os
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
from edge_app.cli.progress import progress  # noqa: E402
from edge_app.datasets import load_image, open_dataset  # noqa: E402
from edge_app.frames.tiles import TileSpec  # noqa: E402

SETTINGS = {"full frame": TileSpec(), "2x2": TileSpec(2, 2, 0.2, False), "3x2": TileSpec(3, 2, 0.2, False),
            "3x2 + full": TileSpec(3, 2, 0.2, True)}
ROUNDS = 2


def _shown(path: Path) -> str:
    full = Path(path).resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else str(full)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--int8-tiles", type=Path, help="an INT8 ONNX calibrated on tiles (edge-app build --tiles)")
    a = p.parse_args(argv)
    mot = ROOT.parent / "shared" / "data" / "mot"
    data = ROOT / "var" / "data" / "mot17-mini-person.json"
    mot_people(sorted(mot.glob("MOT17-*-mini")), data, "person")
    ds = open_dataset(data)
    images = [load_image(s.image_path) for s in ds.samples]
    demo = ROOT / "edge_app" / "demo"
    variants = [("fp32", demo / "coco.onnx", SETTINGS), ("int8", demo / "coco.int8.onnx", SETTINGS)]
    if a.int8_tiles:
        tiled = {k: v for k, v in SETTINGS.items() if v.tiled}
        variants.append(("int8 (tiles-calibrated)", a.int8_tiles, tiled))
    rows, models = [], []
    for precision, path, settings in variants:
        for name, spec in settings.items():
            model = open_for_eval(path, tiles=spec)
            stats = run_detection(model, ds, progress=False).report().stats_dict()
            row = {"precision": precision, "file": _shown(path), "setting": name,
                   "tiles": len(model.prepare(images[0])[0]), "AP50": round(stats["AP50"], 4),
                   "AP": round(stats["AP"], 4), "AR100": round(stats["AR100"], 4)}
            rows.append(row)
            models.append(model)
            print(json.dumps(row), flush=True)
    for model in models:  # warm-up
        model.predict(images[0])
    times: list[list[float]] = [[] for _ in models]
    load0 = os.getloadavg()[0]
    for i in progress(range(ROUNDS * len(images)), ROUNDS * len(images), "timing, models in turn"):
        im = images[i % len(images)]
        for k, model in enumerate(models):
            t0 = time.perf_counter()
            model.predict(im)
            times[k].append((time.perf_counter() - t0) * 1e3)
    load1 = os.getloadavg()[0]
    for row, t in zip(rows, times):
        row["ms_per_frame"] = round(statistics.median(t), 1)
    base = {r["precision"]: r["ms_per_frame"] for r in rows if r["setting"] == "full frame"}
    base["int8 (tiles-calibrated)"] = base["int8"]
    for r in rows:
        r["cost_vs_full"] = round(r["ms_per_frame"] / base[r["precision"]], 2)
    out = {"created": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_description(), "host": platform.node(),
           "frames": len(images), "threads": 2, "timing": f"models in turn, {ROUNDS} rounds, median",
           "load_average": [round(load0, 2), round(load1, 2)], "rows": rows}
    (ROOT / "bench").mkdir(exist_ok=True)
    (ROOT / "bench" / "tiles.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'precision':<24} {'setting':<11} {'tiles':>5} {'AP50':>6} {'AP':>6} {'AR100':>6} {'ms/frame':>9} {'cost':>5}")
    for r in rows:
        print(f"{r['precision']:<24} {r['setting']:<11} {r['tiles']:>5} {r['AP50']:>6.3f} {r['AP']:>6.3f} "
              f"{r['AR100']:>6.3f} {r['ms_per_frame']:>9.1f} {r['cost_vs_full']:>5.2f}x")
    print(f"CPU: {out['machine']}; load average {load0:.2f} before timing, {load1:.2f} after (2 cores: above 2, "
          "the CPU was shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
