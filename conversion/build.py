"""``edge-app build``: FP16 / INT8 artifacts from an FP32 ONNX, gated by the task metric, and TensorRT engines.

For each precision: the task metric on the validation data (AP50, Dice or mIoU through the runtime's
code), its delta against FP32, latency on this machine and size. INT8 that loses more than the tolerance
(default 1 point) is rebuilt with the most sensitive nodes kept in float; what was kept is reported.
The table goes into every artifact's metadata.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import ArtifactMeta, read_meta, write_sidecar
from edge_app.datasets import Dataset, load_image, open_dataset, validation_of
from edge_app.inference.artifacts import variant_path

from . import quantize

PRECISIONS = ("fp16", "int8", "int8-qdq")


def calibration_images(meta: ArtifactMeta, data: str | None, count: int, seed: int = 0) -> list[np.ndarray]:
    """Images from the training data (the artifact remembers where that was), ``count`` of them."""
    source = data or (meta.extra.get("training", {}).get("config", {}) or {}).get("data")
    if source in (None, "synthetic"):
        from edge_app.synthetic import make_sample
        rng = np.random.default_rng(seed)
        return [make_sample(rng, meta.input_size[1], meta.input_size[0]).image for _ in range(count)]
    ds = open_dataset(source)
    idx = np.random.default_rng(seed).permutation(len(ds))[:count]
    return [load_image(ds.samples[int(i)].image_path) for i in sorted(idx)]


def validation_data(meta: ArtifactMeta, val: str | None, work: Path) -> Dataset | None:
    """--val-data, else the training's validation data; synthetic training gets a seeded synthetic set."""
    cfg = meta.extra.get("training", {}).get("config", {}) or {}
    if val is None and cfg.get("data") == "synthetic":
        from edge_app.synthetic import validation_dir
        root = validation_dir(cfg, meta.input_size[1], meta.input_size[0])
        return open_dataset(root, task=meta.task)
    if val:
        return open_dataset(val, task=meta.task)
    return validation_of(cfg, meta.task)


def _row(path: Path, val: Dataset | None, image: np.ndarray, limit: int | None) -> dict[str, Any]:
    from calibration.evaluate import measure_latency, open_for_eval, task_metric

    model = open_for_eval(path)
    row: dict[str, Any] = {"file": path.name, "precision": model.meta.precision,
                           "size_mb": round(path.stat().st_size / 2**20, 2), **measure_latency(model, image)}
    if val is not None:
        m = task_metric(model, val, progress=False, limit=limit)
        row.update(metric=m["metric"], value=m["value"])
    model.close()
    return row


def build(fp32: Path, *, data: str | None = None, val: str | None = None, precisions: tuple[str, ...] = PRECISIONS,
          method: str = "minmax", count: int = 64, tolerance: float = 1.0, limit: int | None = None,
          tensorrt: bool = False, engine_dir: Path | None = None, log: Any = print) -> list[dict[str, Any]]:
    meta = read_meta(fp32)
    val_ds = validation_data(meta, val, fp32.parent)
    if val_ds is None:
        log("no validation data (--val-data, or the training's): the accuracy gate is skipped")
    images = calibration_images(meta, data, count)
    probe = images[0]
    base = _row(fp32, val_ds, probe, limit)
    table = [base]
    log(f"fp32: {json.dumps(base)}")
    for precision in precisions:
        out = variant_path(fp32, precision)
        if precision == "fp16":
            quantize.to_fp16(fp32, out)
            row = _row(out, val_ds, probe, limit)
        else:
            recipe = precision
            quantize.to_int8(fp32, out, images, recipe=recipe, method=method)
            row = _row(out, val_ds, probe, limit)
            row["kept_in_float"] = []
            if val_ds is not None and _loss(base, row) > tolerance:
                log(f"{precision}: loses {_loss(base, row):.2f} points > {tolerance}: keeping sensitive nodes in float")
                for group in quantize.sensitive_node_candidates(fp32):
                    quantize.to_int8(fp32, out, images, recipe=recipe, method=method, exclude=group)
                    row = _row(out, val_ds, probe, limit)
                    row["kept_in_float"] = group
                    if _loss(base, row) <= tolerance:
                        break
        row["calibration"] = method if precision != "fp16" else None
        row["delta_points"] = round(-_loss(base, row), 3) if val_ds is not None else None
        row["within_tolerance"] = val_ds is None or _loss(base, row) <= tolerance
        row["speedup_vs_fp32"] = round(base["median_ms"] / row["median_ms"], 3)
        table.append(row)
        log(f"{precision}: {json.dumps(row)}")
    for path in [fp32] + [variant_path(fp32, p) for p in precisions]:  # every artifact carries the table
        m = read_meta(path, verify_checksum=False)
        write_sidecar(path, replace(m, extra={**m.extra, "precision_table": table}))
    if tensorrt:
        from edge_app.engines import build_engines
        build_engines(fp32, engine_dir or fp32.parent, log=log)
    return table


def _loss(base: dict[str, Any], row: dict[str, Any]) -> float:
    """Metric points lost against FP32 (100 x the metric's difference)."""
    if base.get("value") is None or row.get("value") is None:
        return 0.0
    return 100.0 * (float(base["value"]) - float(row["value"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app build", description=__doc__)
    p.add_argument("onnx", type=Path, help="FP32 ONNX artifact (written by edge-app export)")
    p.add_argument("--data", help="calibration images: a dataset path (default: the training data)")
    p.add_argument("--val-data", help="validation dataset for the accuracy gate (default: the training's)")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated from fp16,int8,int8-qdq")
    p.add_argument("--calibration", choices=quantize.CALIBRATION_METHODS, default="minmax")
    p.add_argument("--count", type=int, default=64, help="calibration images")
    p.add_argument("--tolerance", type=float, default=1.0, help="metric points INT8 may lose")
    p.add_argument("--limit", type=int, help="evaluate on at most this many validation images")
    p.add_argument("--tensorrt", action="store_true", help="also build TensorRT engines (needs TensorRT)")
    p.add_argument("--engine-dir", type=Path)
    a = p.parse_args(argv)
    precisions = tuple(x for x in a.precisions.split(",") if x)
    bad = [x for x in precisions if x not in PRECISIONS]
    if bad:
        p.error(f"unknown precisions {bad}")
    table = build(a.onnx, data=a.data, val=a.val_data, precisions=precisions, method=a.calibration,
                  count=a.count, tolerance=a.tolerance, limit=a.limit, tensorrt=a.tensorrt, engine_dir=a.engine_dir)
    print(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
