"""From scratch vs from the imported pretrained MobileNetV2 backbone, same data, same time budget.

Arms (each one ``edge-app train`` process, one thread, the same seed, lr, batch and ``--time-limit-min``;
they run one after the other):

- SSDLite-MobileNetV2 on ../shared/data/raccoon, train split -> test split (AP50, COCO mAP@[.5:.95]);
- DeepLabv3-MobileNetV2 (output stride 16) on CamVid train -> val at 240x320 (mIoU, 'Unlabelled' ignored).

"pretrained" = ``--weights backbone.npz`` (edge-app import's mapping of the TF SSDLite graph's
FeatureExtractor, see conversion/importers/backbone.py), fine-tuned with the backbone at 0.1x the head's
learning rate; "scratch" = the same model from random weights, every layer at the full rate. The code
under test is copied first (var/bench-transfer/code) so that edits to the checkout during the hour-long
run cannot change later arms. Writes bench/transfer.json (per-epoch validation metrics and wall time per
arm) and docs/transfer_curves.png (metric vs wall time, both arms, both models).

Run: ``python tests/benchmarks/bench_transfer.py --minutes 8 [--arms ssd-scratch,ssd-pretrained,...]
[--backbone var/import/backbone.npz]``. The backbone comes from the import venv:
``var/venvs/import/bin/edge-app import var/import/pedestrian_ssdlite.pb --out var/import --backbone-only``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "var" / "bench-transfer"
OUT_JSON = ROOT / "bench" / "transfer.json"
OUT_PNG = ROOT / "docs" / "transfer_curves.png"
sys.path.insert(0, str(ROOT))  # this checkout's packages, not an installed copy


def arms(backbone: Path) -> dict[str, list[str]]:
    """Arm name -> edge-app train arguments (without --out / --time-limit-min)."""
    r, c = DATA / "raccoon", DATA / "camvid"
    ssd = ["--model", "ssdlite-mobilenet-v2", "--data", str(r), "--split", str(r / "splits" / "train_labels.csv"),
           "--val-data", str(r), "--val-split", str(r / "splits" / "test_labels.csv"), "--epochs", "40",
           "--batch-size", "8", "--lr", "2e-3"]
    seg = ["--model", "deeplabv3-mobilenet-v2", "--data", str(c / "train"), "--val-data", str(c / "val"),
           "--input-size", "240", "320", "--epochs", "20", "--batch-size", "8", "--lr", "2e-3", "--loss", "ce"]
    pre = ["--weights", str(backbone), "--transfer", "finetune", "--backbone-lr-mult", "0.1"]
    scratch = ["--backbone-lr-mult", "1.0"]
    return {"ssd-scratch": ssd + scratch, "ssd-pretrained": ssd + pre,
            "seg-scratch": seg + scratch, "seg-pretrained": seg + pre}


def snapshot(work: Path = WORK) -> Path:
    """A copy of conversion/ that the arms import (edge_app is not edited by this work)."""
    code = work / "code"
    shutil.rmtree(code, ignore_errors=True)
    shutil.copytree(ROOT / "conversion", code / "conversion", ignore=shutil.ignore_patterns("__pycache__"))
    return code


def run_arm(name: str, args: list[str], minutes: float, code: Path, work: Path = WORK) -> dict:
    """One ``edge-app train`` run (one thread) under ``work/name``; its history, load report, best metrics."""
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": f"{code}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-c", "import torch, sys; torch.set_num_threads(1); from conversion.train import main; "
           "sys.exit(main(sys.argv[1:]))", *args, "--out", str(out), "--time-limit-min", str(minutes), "--no-progress"]
    print(f"{name}: {' '.join(args)}", flush=True)
    t0 = time.monotonic()
    with open(work / f"{name}.log", "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=3 * 3600)
    wall = time.monotonic() - t0
    history = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else []
    lines = (work / f"{name}.log").read_text().splitlines()
    load = [ln for ln in lines if ln.startswith("weights:")]
    final = next((json.loads(ln) for ln in reversed(lines) if ln.startswith('{"metric"')), None)
    print(f"{name}: rc {proc.returncode}, {len(history)} epochs, best {final and final.get('best')}", flush=True)
    return {"arm": name, "args": args, "rc": proc.returncode, "wall_s": round(wall, 1), "history": history,
            "load_report": load[0] if load else None, "best": final and final.get("best"),
            "best_metrics": final and final.get("best_metrics"), "export": final and final.get("export")}


def plot(results: list[dict], path: Path) -> None:
    """Validation metric vs wall time: detection AP50 (solid) and mAP (dashed), segmentation mIoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for r in results:
        ax = axes[0] if r["arm"].startswith("ssd") else axes[1]
        colour = "tab:orange" if r["arm"].endswith("pretrained") else "tab:blue"
        t = [h["seconds"] / 60 for h in r["history"]]
        label = r["arm"].split("-")[1]
        if r["arm"].startswith("ssd"):
            ax.plot(t, [h["AP50"] for h in r["history"]], "o-", color=colour, label=f"{label} AP50")
            ax.plot(t, [h.get("mAP") for h in r["history"]], "s--", color=colour, label=f"{label} COCO AP")
        else:
            ax.plot(t, [h["mIoU"] for h in r["history"]], "o-", color=colour, label=f"{label} mIoU")
    axes[0].set_title("SSDLite-MobileNetV2, raccoon test (40)")
    axes[1].set_title("DeepLabv3-MobileNetV2, CamVid val (101)")
    for ax in axes:
        ax.set_xlabel("wall time (min, 1 CPU thread, validation included)")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("validation metric")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=8.0, help="--time-limit-min of every arm")
    p.add_argument("--arms", default="ssd-scratch,ssd-pretrained,seg-scratch,seg-pretrained")
    p.add_argument("--backbone", default=str(ROOT / "var" / "import" / "backbone.npz"))
    a = p.parse_args()
    backbone = Path(a.backbone)
    if not backbone.is_file():
        print(f"{backbone}: not found; make it with the import venv: edge-app import "
              "var/import/pedestrian_ssdlite.pb --out var/import --backbone-only", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    code = snapshot()
    table = arms(backbone)
    from edge_app.core.artifact import write_atomic

    # arms run again replace their earlier entry; the others are kept (the plot shows all of them)
    earlier = json.loads(OUT_JSON.read_text())["arms"] if OUT_JSON.is_file() else []
    results = [r for r in earlier if r["arm"] not in a.arms.split(",")]
    for name in a.arms.split(","):
        results.append(run_arm(name, table[name], a.minutes, code))
        write_atomic(OUT_JSON, json.dumps({"benchmark": "transfer", "minutes_per_arm": a.minutes,
                                           "date": time.strftime("%Y-%m-%d"), "threads": 1,
                                           "arms": results}, indent=1))
    plot(results, OUT_PNG)
    print(json.dumps({"benchmark": "transfer", "minutes_per_arm": a.minutes,
                      "best": {r["arm"]: r["best"] for r in results}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
