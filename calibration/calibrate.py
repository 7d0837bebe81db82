"""``edge-app calibrate``: how good is the artifact actually deployed, which precision, which thresholds.

For each network model of the config (or ``--artifact``): every backend x precision that runs here (FP32,
FP16, INT8 for CPU, TensorRT-style INT8 files on ONNX Runtime; FP32, BF16 where the CPU has it and the
INT8 files on OpenVINO) runs over a labelled dataset through the runtime's own code (``variants``); the
table gives the task metric, its delta against FP32 on ONNX Runtime, latency and size, flags those beyond
the tolerance and recommends the fastest within it for this CPU (at least --min-speedup faster, else FP32). Detection: COCO metrics, per-class AP, PR curves, the
lecture's AP, thresholds per class and an NMS sweep, written to the thresholds file the runtime loads.
Segmentation: IoU/mIoU/Dice/pixel accuracy, the confusion matrix, and the classical baselines.
``--apply`` writes the choice into the config (precision and thresholds_file) and beside the artifact.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.types import SegMask
from edge_app.core.artifact import RUN_PRECISIONS, read_meta
from edge_app.core.operating_point import DETECTOR, exact_threshold
from edge_app.cli.progress import add_progress_flag
from edge_app.datasets import Dataset, artifact_validation, load_image
from edge_app.backends.cpu import cpu_info
from edge_app.inference.artifacts import write_recommendation
from edge_app.inference.choice import MIN_SPEEDUP
from edge_app.inference.models import ClassicalModel, ModelSpec
from edge_app.frames.tiles import TileSpec, add_tile_flags, spec_from_flags
from edge_app.inference.classical import METHODS

from . import plots, report
from .evaluate import DetectionRun, run_segmentation
from .thresholds import CRITERIA, operating_point, write_thresholds
from .variants import TABLE_KEYS, compare, compare_engines, machine_description, recommend  # noqa: F401 (bench scripts)
from edge_app.cli.errors import fail

def _dataset(meta: Any, data: str | None, split: str | None) -> Dataset:
    """--data, else the artifact's own validation data (its metadata says where that was)."""
    ds = artifact_validation(meta, data, split)
    if ds is None:
        raise SystemExit(f"calibrate: no labelled data for {meta.model}: give --data")
    return ds


def _none_nan(x: Any) -> Any:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def detection_section(name: str, model: Any, run: DetectionRun, criterion: str, floor: float, folder: Path,
                      thresholds_file: Path, top_k: int = DETECTOR.top_k, max_detections: int = DETECTOR.max_detections,
                      default: float = DETECTOR.score_threshold) -> dict[str, Any]:
    """Thresholds for the classes the labels judge; the others keep ``default`` (the model's configured
    score_threshold), which the file leaves to the runtime by not naming them."""
    r = run.report()
    chosen, best_iou, live, sweep = operating_point(model, run, criterion, floor, top_k, max_detections, default)
    expected = {c: {"precision": _none_nan(live.precision[i]), "recall": _none_nan(live.recall[i]),
                    "f1": _none_nan(live.f1[i]), "tp": int(live.tp[i]), "fp": int(live.fp[i]),
                    "labels": int(live.num_gt[i])} for i, c in enumerate(model.classes)}
    o = live.overall()
    write_thresholds(thresholds_file, name, model.meta.onnx_sha256, model.classes, chosen, best_iou, criterion,
                     expected, {"expected_overall": {k: _none_nan(o[k]) for k in ("precision", "recall", "f1")},
                                "expected_with": {"match_iou": 0.5, "top_k": top_k, "max_detections": max_detections,
                                                  "images": len(run.truths), "setting": model.spec.tiles.setting},
                                "artifact": model.path.name, "precision": model.precision,
                                "uncalibrated": {"classes": [c for c in model.classes if c not in chosen],
                                                 "keep": "the model's score_threshold", "assumed": default}})
    png = f"{name}_pr.png"
    plots.pr_curves({c: r.curves[i] for i, c in enumerate(model.classes)}, chosen,
                    f"{name}: precision-recall at IoU 0.5 ({model.precision})", folder / png)
    per_class = [{"class": c, "AP": r.ap[i], "AP50": r.ap50[i], "AP_lecture50": r.ap_lecture[i],
                  "threshold": exact_threshold(chosen[c].threshold if c in chosen else default),
                  "source": "calibrated" if c in chosen else "default", **expected[c]}
                 for i, c in enumerate(model.classes)]
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


def apply_to_config(config: Path, model: str, precision: str, thresholds: Path | None,
                    backend: str | None = None) -> None:
    """Set precision, backend (and thresholds_file) in the model's table of the config, keeping comments, layout
    and every other key (tomlkit edits the document, not its text); the result is checked against the
    schema before it replaces the file, so --apply never writes a config that ``edge-app run`` refuses."""
    from edge_app.config.edit import edit_config

    if precision not in RUN_PRECISIONS:
        raise SystemExit(f"calibrate --apply: precision {precision!r} is not one of {RUN_PRECISIONS}")
    if thresholds is not None:  # relative to the config's folder when it lies below it (config paths are)
        try:
            thresholds = Path(thresholds).resolve().relative_to(config.resolve().parent)
        except ValueError:
            pass
    # The backend is written only where the config names another one: with backend = "auto" the runtime
    # reads it from the recommendation file (and a config moved to a machine without OpenVINO still runs).
    current = _configured_backend(config, model)
    updates = {"precision": precision, **({"backend": backend} if backend and current not in ("auto", backend) else {}),
               **({"thresholds_file": str(thresholds)} if thresholds else {})}
    try:
        edit_config(config, {("models", model): updates})
    except KeyError:
        raise SystemExit(f"calibrate --apply: no [models.{model}] table in {config}") from None


def _configured_backend(config: Path, model: str) -> str:
    from edge_app.config import ConfigError
    from edge_app.config.loader import read_toml

    try:
        table = read_toml(Path(config)).get("models", {}).get(model, {})
    except ConfigError:
        return "auto"
    return str(table.get("backend", "auto")) if isinstance(table, dict) else "auto"


def calibrate_model(target: Target, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    name, fp32 = target.name, target.fp32
    meta = read_meta(fp32)
    dataset = _dataset(meta, args.data, args.split)
    if dataset.issues:
        print(dataset.issues.summary(), file=sys.stderr)
    rows, runs = compare(fp32, dataset, args.tolerance, args.limit, not args.no_progress, target)
    best, why = recommend(rows, args.min_speedup)
    chosen = best["precision"]
    for row in rows:
        if not row["within_tolerance"]:
            row["flag"] = f"loses {-row['delta_points']:.2f} points > tolerance {args.tolerance}"
    model, run = runs[(best["backend"], chosen)]
    engines, engine_note = compare_engines(fp32, target.engine_dir or fp32.parent, dataset, rows[0], args.limit,
                                           not args.no_progress)
    images = len(dataset.samples[:args.limit] if args.limit else dataset.samples)
    section: dict[str, Any] = {"name": name, "task": meta.task, "artifact": str(fp32), "images": images,
                               "precisions": rows, "recommended": chosen, "recommended_backend": best["backend"],
                               "why": why, "machine": machine_description(), "engines": engines,
                               "tensorrt": engine_note}
    thresholds_file = Path(args.thresholds) if args.thresholds else fp32.with_name(f"{fp32.stem}.thresholds.json")
    if meta.task == "detection":
        section.update(detection_section(name, model, run, args.criterion, args.floor, folder, thresholds_file,
                                         target.top_k, target.max_detections, target.score_threshold))
    else:
        section.update(segmentation_section(name, run, tuple(model.classes), folder))
        section["baselines"] = baselines(dataset, tuple(model.classes), args.limit, not args.no_progress)
    if args.apply:
        cpu = cpu_info()
        write_recommendation(fp32, {
            "backend": best["backend"], "precision": chosen, "why": why, "onnx_sha256": meta.onnx_sha256,
            "checked": True, "metric": best["metric"], "value": best["value"], "delta_points": best["delta_points"],
            "images": images, "machine": cpu.describe(), "cpu": cpu.signature(),
            "table": [{k: r.get(k) for k in TABLE_KEYS} for r in rows]}, target.tiles.setting)
        if args.config_path is not None:
            apply_to_config(args.config_path, name, chosen, thresholds_file if meta.task == "detection" else None,
                            best["backend"])
    return section


@dataclass(frozen=True)
class Target:
    """A model to calibrate, with the decode settings the runtime will use for it (the config's, or
    the defaults for a bare ``--artifact``), so the expected numbers are the runtime's."""

    name: str
    fp32: Path
    top_k: int = DETECTOR.top_k
    max_detections: int = DETECTOR.max_detections
    score_threshold: float = DETECTOR.score_threshold  # what classes the labels do not judge keep
    engine_dir: Path | None = None  # where TensorRT engines are looked for (the config's; else beside fp32)
    tiles: TileSpec = TileSpec()    # the model's tiles (the config's, or --tiles): calibrated as it runs
    class_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _targets(args: argparse.Namespace) -> list[Target]:
    if args.artifact:
        return [Target(Path(a).stem, Path(a), tiles=spec_from_flags(args)) for a in args.artifact]
    from edge_app.config import ConfigError, load_config
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise SystemExit(f"calibrate: {exc}") from None
    args.config_path = Path(args.config)
    from edge_app.config import model_tiles
    return [Target(n, cfg.resolve(m.artifact), m.top_k, m.max_detections, m.score_threshold,
                   cfg.state(cfg.runtime.engine_dir),
                   model_tiles(cfg, n), tuple((g, tuple(c)) for g, c in m.class_groups.items()))
            for n, m in cfg.models.items()
            if m.enabled and m.kind in ("detector", "segmenter") and (not args.model or n in args.model)]


def _summary(section: dict[str, Any]) -> str:
    lines = [f"{section['name']} ({section['task']}, {section['images']} images): recommended "
             f"{section['recommended_backend']} {section['recommended']} — {section['why']}"]
    for r in section["precisions"]:
        lines.append(f"  {r['backend']:<11} {r['precision']:<9} {r['metric']} {r['value']:.4f} ({r['delta_points']:+.2f})  "
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
    add_tile_flags(p)
    add_progress_flag(p)
    args = p.parse_args(argv)
    args.config_path = None
    targets = _targets(args)
    if not targets:
        return fail("calibrate", "no detector or segmenter to calibrate")
    out = Path(args.out)
    with report.staged(out) as folder:
        sections = [calibrate_model(t, args, folder) for t in targets]
        data = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": f"{platform.node()}: "
                f"{machine_description()}", "data": args.data or "validation data",
                "models": sections}
        report.write(folder, data)
    for s in sections:
        print(_summary(s))
    print(f"report: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
