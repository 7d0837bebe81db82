"""Precision table per model: FP32 against each FP16/INT8 artifact on this CPU: latency ratio and the
task-metric delta on the validation split, and the artifact calibration recommends.
Goals here: U-Net >= 1.9x, DeepLab >= 1.35x, the recommended artifact never slower than FP32, loss <= 1 point.
Models: the three trained on the shared data (README: "Training on the shared data"), when present in
artifacts/{isbi-unet,camvid-deeplab,raccoon-ssd}; each is skipped with a message otherwise.
Variants are built first when missing (edge-app build). Run: `python tests/benchmarks/bench_precision.py`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
CANDIDATES = [
    ("isbi-unet", ROOT / "artifacts" / "isbi-unet" / "model.onnx", None),
    ("camvid-deeplab", ROOT / "artifacts" / "camvid-deeplab" / "model.onnx", DATA / "camvid" / "val"),
    ("raccoon-ssd", ROOT / "artifacts" / "raccoon-ssd" / "model.onnx", None),
]


def main() -> int:
    from calibration.calibrate import _dataset, compare, recommend
    from conversion.build import build
    from edge_app.core.artifact import read_meta
    from edge_app.inference.artifacts import variant_path

    results = []
    for name, fp32, data in CANDIDATES:
        if not fp32.is_file():
            print(f"{name}: {fp32} not trained here; skipped")
            continue
        if not variant_path(fp32, "int8").is_file():
            build(fp32, val=str(data) if data else None, count=32, limit=40, log=lambda m: None)
        meta = read_meta(fp32)
        ds = _dataset(meta, str(data) if data else None, None)
        rows, _ = compare(fp32, ds, 1.0, 60, False)
        chosen, why = recommend(rows)
        for r in rows:
            print(f"{name:>15} {r['backend']:<11} {r['precision']:<9} {r['metric']} {r['value']:.4f} "
                  f"({r['delta_points']:+.2f} pts) {r['median_ms']:7.2f} ms  x{r['speedup_vs_fp32']:.2f}")
        print(f"{name:>15} recommended: {chosen['backend']} {chosen['precision']} ({why})")
        results.append({"model": name, "rows": rows, "recommended": f"{chosen['backend']} {chosen['precision']}"})
    best = {r["model"]: max(x["speedup_vs_fp32"] for x in r["rows"] if x["precision"] == "int8"
                            and x["backend"] == "onnxruntime") for r in results
            if any(x["precision"] == "int8" and x["backend"] == "onnxruntime" for x in r["rows"])}
    print("SUMMARY precision: INT8 (ORT) speed-up vs FP32 " + ", ".join(f"{k} x{v:.2f}" for k, v in best.items()))
    print(json.dumps({"benchmark": "precision", "models": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
