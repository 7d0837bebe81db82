"""Small objects: SSDLite-MobileNetV2's default layout against the small-object options, same budget.

Data: mosaics of synthetic scenes (conversion/small_objects.py: 4x4 tiles of 160 px, objects 0.06..0.15
of the image, 18..47 px at a 320 input), 200 training and 60 validation images, seeded. Every arm
starts from the imported pretrained backbone (backbone.npz), fine-tunes with the same lr, batch, seed
and ``--time-limit-min``, one thread, one after the other:

- ``default``: 320x320, six maps from stride 16, default-box scales 0.2..0.95 (the paper's);
- ``stride8-auto``: 320x320, a seventh map in front at stride 8 (block 6's expansion, 192 ch) and the
  scales from the training boxes (``--stride8 --anchor-scales auto``: quantiles of their sizes);
- ``input480``: 480x480 input, default layout (the stride-16 map is 30x30 instead of 20x20);
- ``auto``: 320x320, six maps as ``default``, only the scales from the training boxes (which of the two
  changes of ``stride8-auto`` does the work).

Metrics on the validation mosaics through train's validation (the runtime's decoder and NMS, COCO
rules): AP50, mAP@[.5:.95], COCO APs / APm (areas in the 640-px mosaic's pixels).
Writes bench/small_objects.json.

Run: ``python tests/benchmarks/bench_small_objects.py --minutes 7 [--arms default,stride8-auto,input480,auto]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_transfer import ROOT, run_arm, snapshot  # noqa: E402

sys.path.insert(0, str(ROOT))  # this checkout's packages, not an installed copy

WORK = ROOT / "var" / "bench-small"
OUT_JSON = ROOT / "bench" / "small_objects.json"


def arms(data: Path, backbone: Path) -> dict[str, list[str]]:
    base = ["--model", "ssdlite-mobilenet-v2", "--data", str(data / "train"), "--val-data", str(data / "val"),
            "--epochs", "40", "--batch-size", "8", "--lr", "2e-3", "--weights", str(backbone),
            "--transfer", "finetune", "--backbone-lr-mult", "0.1"]
    return {"default": base + ["--input-size", "320", "320"],
            "stride8-auto": base + ["--input-size", "320", "320", "--stride8", "--anchor-scales", "auto"],
            "auto": base + ["--input-size", "320", "320", "--anchor-scales", "auto"],
            "input480": base + ["--input-size", "480", "480"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=7.0)
    p.add_argument("--arms", default="default,stride8-auto,input480,auto")
    p.add_argument("--backbone", default=str(ROOT / "var" / "import" / "backbone.npz"))
    a = p.parse_args()
    from conversion.small_objects import write_mosaics
    from edge_app.core.artifact import write_atomic

    data = WORK / "data"
    if not (data / "val" / "images").is_dir():
        write_mosaics(data / "train", 200, seed=1)
        write_mosaics(data / "val", 60, seed=2)
    code = snapshot(WORK)
    table = arms(data, Path(a.backbone))
    earlier = json.loads(OUT_JSON.read_text())["arms"] if OUT_JSON.is_file() else []
    results = [r for r in earlier if r["arm"] not in a.arms.split(",")]
    for name in a.arms.split(","):
        r = run_arm(name, table[name], a.minutes, code, WORK)
        coco = (r.get("best_metrics") or {}).get("coco") or {}
        r["summary"] = {"AP50": r["best"], "mAP": (r.get("best_metrics") or {}).get("mAP"),
                        **{k: coco.get(k) for k in ("APs", "APm", "ARs", "ARm", "AR100") if k in coco}}
        results.append(r)
        write_atomic(OUT_JSON, json.dumps({"benchmark": "small_objects", "minutes_per_arm": a.minutes, "threads": 1,
                                           "date": time.strftime("%Y-%m-%d"), "arms": results}, indent=1))
    print(json.dumps({"benchmark": "small_objects", "summary": {r["arm"]: r["summary"] for r in results}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
