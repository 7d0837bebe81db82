"""``edge-app calibrate``: how good is the artifact actually deployed, which precision, which thresholds.

For each network model of the config (or ``--artifact``): every precision variant present (FP32, FP16,
INT8 for CPU, TensorRT-style INT8) runs over a labelled dataset through the runtime's own code; the table
gives the task metric, its delta against FP32, latency and size, flags INT8 beyond the tolerance and
recommends the fastest artifact within it (at least --min-speedup faster than FP32, else FP32). Detection: COCO metrics, per-class AP, PR curves, the
lecture's AP, thresholds per class and an NMS sweep, written to the thresholds file the runtime loads.
Segmentation: IoU/mIoU/Dice/pixel accuracy, the confusion matrix, and the classical baselines.
``--apply`` writes the choice into the config (precision and thresholds_file) and beside the artifact.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.types import SegMask
from edge_app.core.artifact import read_meta, write_atomic
from edge_app.datasets import Dataset, load_image, open_dataset, validation_of
from edge_app.decoders import DetectionDecoder
from edge_app.inference.artifacts import ONNX_VARIANTS, recommendation_path, variant_path
from edge_app.inference.models import ClassicalModel, ModelSpec
from edge_app.inference.classical import METHODS

from . import plots, report
from .evaluate import (DetectionRun, measure_latencies, open_for_eval, run_detection, run_segmentation)
from .thresholds import CRITERIA, pick_threshold, write_thresholds

NMS_SWEEP = (0.3, 0.4, 0.45, 0.5, 0.6, 0.7)


def _dataset(meta: Any, data: str | None, split: str | None, folder: Path) -> Dataset:
    """--data, else the artifact's own validation data (its metadata says where that was)."""
    cfg = meta.extra.get("training", {}).get("config", {}) or {}
    if data is None and cfg.get("data") == "synthetic":
        from edge_app.synthetic import validation_dir
        return open_dataset(validation_dir(cfg, meta.input_size[1], meta.input_size[0]), task=meta.task)
    if data:
        return open_dataset(data, split, task=meta.task)
    ds = validation_of(cfg, meta.task)
    if ds is None:
        raise SystemExit(f"calibrate: no labelled data for {meta.model}: give --data")
    return ds


def compare(fp32: Path, dataset: Dataset, tolerance: float, limit: int | None, progress: bool) -> tuple[list, dict]:
    """Every precision variant present: task metric, delta vs FP32, latency, size. Returns (rows, runs)."""
    rows: list[dict[str, Any]] = []
    runs: dict[str, tuple[Any, Any]] = {}
    probe = load_image(dataset.samples[0].image_path)
    for precision in ONNX_VARIANTS:
        path = variant_path(fp32, precision)
        if not path.is_file():
            continue
        model = open_for_eval(path)
        run: Any
        if model.task == "detection":
            run = run_detection(model, dataset, progress, limit, keep_raw=True)
            r = run.report()
            value, metric, extra = r.map50, "AP50", {"mAP": r.map}
        else:
            run = run_segmentation(model, dataset, progress, limit)
            two = len(model.classes) == 2
            value = float(run.dice[1]) if two else run.miou
            metric, extra = ("Dice" if two else "mIoU"), {"mIoU": run.miou}
        runs[precision] = (model, run)
        rows.append({"precision": precision, "file": path.name, "metric": metric, "value": value, **extra,
                     "size_mb": round(path.stat().st_size / 2**20, 2)})
    # Timed together, taking turns, once every variant is loaded (see measure_latencies).
    latency = measure_latencies({p: m for p, (m, _) in runs.items()}, probe)
    for row in rows:
        row.update(latency[row["precision"]])
    base = rows[0]
    for row in rows:
        row["delta_points"] = round(100 * (row["value"] - base["value"]), 3)
        row["within_tolerance"] = -row["delta_points"] <= tolerance
        row["speedup_vs_fp32"] = round(base["median_ms"] / row["median_ms"], 3)
    return rows, runs


MIN_SPEEDUP = 1.05


def recommend(rows: list[dict[str, Any]], min_speedup: float = MIN_SPEEDUP) -> tuple[str, str]:
    """The fastest variant within the metric tolerance; a variant must beat FP32 by ``min_speedup`` to
    be chosen over it (a 1 % lead is timing noise on a shared machine, and FP32 is the reference)."""
    ok = [r for r in rows if r["within_tolerance"] and (r["precision"] == "fp32" or r["speedup_vs_fp32"] >= min_speedup)]
    best = min(ok, key=lambda r: r["median_ms"])
    if best["precision"] == "fp32":
        return "fp32", (f"no other precision is at least {min_speedup:.2f}x faster within the tolerance "
                        "on this machine")
    return best["precision"], (f"{best['speedup_vs_fp32']:.2f}x faster than FP32, "
                               f"{best['delta_points']:+.2f} points")


def detection_section(name: str, model: Any, run: DetectionRun, criterion: str, floor: float,
                      folder: Path, thresholds_file: Path) -> dict[str, Any]:
    r = run.report()
    chosen = {c: pick_threshold(r.curves[i], criterion, floor) for i, c in enumerate(model.classes)}
    thr = np.array([chosen[c].threshold for c in model.classes], np.float32)
    sweep = []
    for iou in NMS_SWEEP:  # re-decode the kept network outputs: no second pass through the model
        dec = DetectionDecoder(model.meta, score_threshold=thr, iou_threshold=iou, top_k=1000, max_detections=100)
        alt = DetectionRun(run.classes, [dec(o, g) for o, g in run.raw], run.truths, run.image_ids)
        o = alt.report(iou_thresholds=(0.5,)).overall()
        sweep.append({"nms_iou": iou, "f1": o["f1"], "precision": o["precision"], "recall": o["recall"]})
    best_iou = max(sweep, key=lambda s: (np.nan_to_num(s["f1"]), -abs(s["nms_iou"] - 0.45)))["nms_iou"]
    write_thresholds(thresholds_file, name, model.meta.onnx_sha256, model.classes, chosen, best_iou, criterion,
                     {"artifact": model.path.name, "precision": model.precision})
    png = f"{name}_pr.png"
    plots.pr_curves({c: r.curves[i] for i, c in enumerate(model.classes)}, chosen,
                    f"{name}: precision-recall at IoU 0.5 ({model.precision})", folder / png)
    per_class = [{"class": c, "AP": r.ap[i], "AP50": r.ap50[i], "AP_lecture50": r.ap_lecture[i],
                  "threshold": chosen[c].threshold, "precision": chosen[c].precision, "recall": chosen[c].recall,
                  "f1": chosen[c].f1, "labels": int(r.num_gt[i])} for i, c in enumerate(model.classes)]
    return {"coco": r.stats_dict(), "per_class": per_class, "nms_sweep": sweep, "nms_iou": best_iou,
            "criterion": criterion, "thresholds_file": str(thresholds_file), "plots": [png]}


def baselines(dataset: Dataset, classes: tuple[str, ...], limit: int | None, progress: bool) -> list[dict[str, Any]]:
    """The lecture's classical segmenters on a binary task, each with its better polarity."""
    if len(classes) != 2:
        return []
    out: list[dict[str, Any]] = []
    probe = load_image(dataset.samples[0].image_path)
    for method in METHODS:
        best: dict[str, Any] | None = None
        for invert in (False, True):
            model = _Polarity(ClassicalModel(ModelSpec(method, "classical", None, method=method, classes=classes)), invert)
            r = run_segmentation(model, dataset, progress, limit)
            cand = {"method": method, "metric": "Dice", "value": float(r.dice[1]), "mIoU": r.miou,
                    "polarity": "inverted" if invert else "as is"}
            best = cand if best is None or cand["value"] > best["value"] else best
        assert best is not None
        t0 = time.perf_counter()
        for _ in range(5):
            model.predict(probe)
        best["median_ms"] = round((time.perf_counter() - t0) / 5 * 1e3, 3)
        out.append(best)
    return out


class _Polarity:
    """A binary classical segmenter with its classes optionally swapped (Otsu cannot know which is which)."""

    def __init__(self, inner: ClassicalModel, invert: bool) -> None:
        self.inner, self.invert = inner, invert
        self.name, self.task, self.classes = inner.name, inner.task, inner.classes

    def predict(self, frame: np.ndarray) -> Any:
        r = self.inner.predict(frame)
        if self.invert and r.mask is not None:
            r.mask = SegMask(1 - r.mask.labels)
        return r


def segmentation_section(name: str, run: Any, classes: tuple[str, ...], folder: Path) -> dict[str, Any]:
    png = f"{name}_confusion.png"
    plots.confusion(run.confusion, classes, f"{name}: confusion (rows: truth)", folder / png)
    per_class = [{"class": c, "iou": run.iou[i], "dice": run.dice[i], "precision": run.precision[i],
                  "recall": run.recall[i]} for i, c in enumerate(classes)]
    return {"summary": {"mIoU": run.miou, "mean_Dice": run.mean_dice, "pixel_accuracy": run.pixel_accuracy},
            "per_class": per_class, "confusion": run.confusion.tolist(), "plots": [png]}


def apply_to_config(config: Path, model: str, precision: str, thresholds: Path | None) -> None:
    """Set precision (and thresholds_file) in the model's table of the config, keeping everything else."""
    lines = config.read_text().splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip() == f"[models.{model}]"), None)
    if start is None:
        raise SystemExit(f"calibrate --apply: no [models.{model}] table in {config}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    if thresholds is not None:  # relative to the config's folder when it lies below it (config paths are)
        try:
            thresholds = Path(thresholds).resolve().relative_to(config.resolve().parent)
        except ValueError:
            pass
    updates = {"precision": precision, **({"thresholds_file": str(thresholds)} if thresholds else {})}
    for key, value in updates.items():
        pat = re.compile(rf"^(\s*){key}\s*=\s*\"[^\"]*\"(.*)$")
        for i in range(start + 1, end):
            m = pat.match(lines[i])
            if m:
                lines[i] = f'{m.group(1)}{key} = "{value}"{m.group(2)}'
                break
        else:
            lines.insert(start + 1, f'{key} = "{value}"')
            end += 1
    write_atomic(config, "\n".join(lines) + "\n")


def calibrate_model(name: str, fp32: Path, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    meta = read_meta(fp32)
    dataset = _dataset(meta, args.data, args.split, fp32.parent)
    if dataset.issues:
        print(dataset.issues.summary(), file=sys.stderr)
    rows, runs = compare(fp32, dataset, args.tolerance, args.limit, not args.no_progress)
    chosen, why = recommend(rows, args.min_speedup)
    for row in rows:
        if row["precision"] != "fp32" and not row["within_tolerance"]:
            row["flag"] = f"loses {-row['delta_points']:.2f} points > tolerance {args.tolerance}"
    model, run = runs[chosen]
    section: dict[str, Any] = {"name": name, "task": meta.task, "artifact": str(fp32), "images": len(dataset.samples[:args.limit] if args.limit else dataset.samples),
                               "precisions": rows, "recommended": chosen, "why": why,
                               "tensorrt": "engines compared only where TensorRT exists (not on this machine)"}
    thresholds_file = Path(args.thresholds) if args.thresholds else fp32.with_name(f"{fp32.stem}.thresholds.json")
    if meta.task == "detection":
        section.update(detection_section(name, model, run, args.criterion, args.floor, folder, thresholds_file))
    else:
        section.update(segmentation_section(name, run, tuple(model.classes), folder))
        section["baselines"] = baselines(dataset, tuple(model.classes), args.limit, not args.no_progress)
    if args.apply:
        write_atomic(recommendation_path(fp32), json.dumps({"precision": chosen, "why": why,
                                                            "onnx_sha256": meta.onnx_sha256}) + "\n")
        if args.config_path is not None:
            apply_to_config(args.config_path, name, chosen, thresholds_file if meta.task == "detection" else None)
    return section


def _targets(args: argparse.Namespace) -> list[tuple[str, Path]]:
    if args.artifact:
        return [(Path(a).stem, Path(a)) for a in args.artifact]
    from edge_app.config import ConfigError, load_config
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise SystemExit(f"calibrate: {exc}") from None
    args.config_path = Path(args.config)
    return [(n, cfg.resolve(m.artifact)) for n, m in cfg.models.items()
            if m.enabled and m.kind in ("detector", "segmenter") and (not args.model or n in args.model)]


def _summary(section: dict[str, Any]) -> str:
    lines = [f"{section['name']} ({section['task']}, {section['images']} images): recommended "
             f"{section['recommended']} — {section['why']}"]
    for r in section["precisions"]:
        lines.append(f"  {r['precision']:<9} {r['metric']} {r['value']:.4f} ({r['delta_points']:+.2f})  "
                     f"{r['median_ms']:7.2f} ms  {r['size_mb']:6.2f} MB  {'' if r['within_tolerance'] else 'FLAG'}")
    if section["task"] == "detection":
        c = section["coco"]
        lines.append(f"  COCO AP {c['AP']:.4f} AP50 {c['AP50']:.4f} AP75 {c['AP75']:.4f}; thresholds -> "
                     f"{section['thresholds_file']} (NMS IoU {section['nms_iou']})")
    else:
        s = section["summary"]
        lines.append(f"  mIoU {s['mIoU']:.4f} Dice {s['mean_Dice']:.4f} pixel acc {s['pixel_accuracy']:.4f}")
        for b in section.get("baselines", []):
            lines.append(f"  baseline {b['method']:<9} Dice {b['value']:.4f} ({b['polarity']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app calibrate", description=__doc__)
    p.add_argument("--config", default="config.toml", help="models to calibrate (enabled detectors/segmenters)")
    p.add_argument("--model", action="append", help="only this model of the config (repeatable)")
    p.add_argument("--artifact", action="append", help="an FP32 ONNX instead of the config's models")
    p.add_argument("--data", help="labelled dataset (default: the artifact's validation data)")
    p.add_argument("--split", help="split file for --data")
    p.add_argument("--out", default="var/reports/calibration", help="report folder (replaced atomically)")
    p.add_argument("--criterion", choices=CRITERIA, default="f1", help="threshold choice: max F1, or a floor")
    p.add_argument("--floor", type=float, default=0.9, help="precision or recall floor for those criteria")
    p.add_argument("--tolerance", type=float, default=1.0, help="metric points a precision may lose")
    p.add_argument("--min-speedup", type=float, default=MIN_SPEEDUP,
                   help="how much faster than FP32 another precision must be to be recommended")
    p.add_argument("--thresholds", help="thresholds file (default: <artifact>.thresholds.json)")
    p.add_argument("--limit", type=int, help="at most this many images")
    p.add_argument("--apply", action="store_true", help="write the recommendation into the config")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.config_path = None
    targets = _targets(args)
    if not targets:
        print("calibrate: no detector or segmenter to calibrate", file=sys.stderr)
        return 2
    out = Path(args.out)
    with report.staged(out) as folder:
        sections = [calibrate_model(name, fp32, args, folder) for name, fp32 in targets]
        data = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": f"{platform.node()} "
                f"{platform.machine()} {platform.processor() or ''}".strip(), "data": args.data or "validation data",
                "models": sections}
        report.write(folder, data)
    for s in sections:
        print(_summary(s))
    print(f"report: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
