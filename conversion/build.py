"""``edge-app build``: FP16 / INT8 artifacts from an FP32 ONNX, gated by the task metric, and TensorRT engines.

For each precision: the task metric on the validation data (AP50, Dice or mIoU through the runtime's
code), its delta against FP32, latency on this machine and size. INT8 that loses more than the tolerance
(default 1 point) is rebuilt with the most sensitive nodes kept in float; what was kept is reported.
Without validation data nothing is judged: the rows say ``"gate": "unchecked"`` (``within_tolerance``
null), and neither calibration nor ``precision = "auto"`` ever picks such a variant.
The table goes into every artifact's metadata. ``--tensorrt`` builds the engines with the same
calibration images (implicit INT8 calibration where there is no QDQ model).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import PRECISIONS as ARTIFACT_PRECISIONS
from edge_app.core.artifact import ArtifactMeta, read_meta, write_sidecar
from edge_app.cli.progress import add_progress_flag
from edge_app.datasets import Dataset, artifact_validation, load_image, open_dataset
from edge_app.inference.artifacts import variant_path
from edge_app.frames.tiles import TileSpec, add_tile_flags, crops_of, spec_from_flags

from . import quantize

PRECISIONS = tuple(p for p in ARTIFACT_PRECISIONS if p != "fp32")  # the variants build makes


def calibration_images(meta: ArtifactMeta, data: str | None, count: int, seed: int = 0) -> list[np.ndarray]:
    """Images from the training data (the artifact remembers where that was), ``count`` of them."""
    source = data or (meta.extra.get("training", {}).get("config", {}) or {}).get("data")
    if source in (None, "synthetic"):
        from edge_app.datasets.synthetic import make_sample
        rng = np.random.default_rng(seed)
        return [make_sample(rng, meta.input_size[1], meta.input_size[0]).image for _ in range(count)]
    ds = open_dataset(source)
    idx = np.random.default_rng(seed).permutation(len(ds))[:count]
    return [load_image(ds.samples[int(i)].image_path) for i in sorted(idx)]


def _row_of(path: Path, val: Dataset | None, image: np.ndarray, limit: int | None, progress: bool,
         tiles: TileSpec = TileSpec()) -> dict[str, Any]:
    from calibration.evaluate import measure_latency, open_for_eval, task_metric

    model = open_for_eval(path, tiles=tiles)
    row: dict[str, Any] = {"file": path.name, "precision": model.meta.precision, "setting": tiles.setting,
                           "size_mb": round(path.stat().st_size / 2**20, 2), **measure_latency(model, image)}
    if val is not None:
        m = task_metric(model, val, progress=progress, limit=limit)
        row.update(metric=m["metric"], value=m["value"])
    model.close()
    return row


def build(fp32: Path, *, data: str | None = None, val: str | None = None, precisions: tuple[str, ...] = PRECISIONS,
          method: str = "minmax", count: int = 64, tolerance: float = 1.0, limit: int | None = None,
          tensorrt: bool = False, engine_dir: Path | None = None, log: Any = print,
          progress: bool = True, tiles: TileSpec = TileSpec(), seed: int = 0) -> list[dict[str, Any]]:
    """``tiles``: the model runs tiled: the gate measures the tiled metric and the INT8 calibration images
    are the tiles of the calibration frames (what the network will see)."""
    meta = read_meta(fp32)
    val_ds = artifact_validation(meta, val)
    if val_ds is None:
        log("no validation data (--val-data, or the training's): the accuracy gate is skipped")
    images = calibration_images(meta, data, count, seed)
    probe = images[0]
    if tiles.tiled:  # ``count`` tiles drawn from every frame's (not all the tiles of the first few frames)
        crops = [crop for im in images for crop in crops_of(im, tiles)[0]]
        pick = np.random.default_rng(seed).permutation(len(crops))[:max(count, len(images))]
        images = [crops[int(i)] for i in sorted(pick)]
    _row = partial(_row_of, tiles=tiles)
    base = _row(fp32, val_ds, probe, limit, progress)
    table = [base]
    log(f"fp32: {json.dumps(base)}")
    for precision in precisions:
        out = variant_path(fp32, precision)
        if precision == "fp16":
            quantize.to_fp16(fp32, out)
            row = _row(out, val_ds, probe, limit, progress)
        else:
            recipe = precision
            quantize.to_int8(fp32, out, images, recipe=recipe, method=method)
            row = _row(out, val_ds, probe, limit, progress)
            row["kept_in_float"] = []
            if val_ds is not None and _loss(base, row) > tolerance:
                log(f"{precision}: loses {_loss(base, row):.2f} points > {tolerance}: keeping sensitive nodes in float")
                for group in quantize.sensitive_node_candidates(fp32):
                    quantize.to_int8(fp32, out, images, recipe=recipe, method=method, exclude=group)
                    row = _row(out, val_ds, probe, limit, progress)
                    row["kept_in_float"] = group
                    if _loss(base, row) <= tolerance:
                        break
        row["calibration"] = method if precision != "fp16" else None
        if val_ds is None:  # nothing was measured: say so, never "passed"
            row.update(delta_points=None, within_tolerance=None, gate="unchecked (no validation data)")
        else:
            ok = _loss(base, row) <= tolerance
            row.update(delta_points=round(-_loss(base, row), 3), within_tolerance=ok,
                       gate="passed" if ok else f"failed: loses more than {tolerance} points")
        row["speedup_vs_fp32"] = round(base["median_ms"] / row["median_ms"], 3)
        table.append(row)
        log(f"{precision}: {json.dumps(row)}")
    for path in [fp32] + [variant_path(fp32, p) for p in precisions]:  # every artifact carries the table
        m = read_meta(path, verify_checksum=False)
        write_sidecar(path, replace(m, extra={**m.extra, "precision_table": table}))
    if tensorrt:
        from edge_app.inference.engines import build_engines
        build_engines(fp32, engine_dir or fp32.parent, images=images, log=log)
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
    p.add_argument("--precisions", default=",".join(PRECISIONS), help=f"comma-separated from {','.join(PRECISIONS)}")
    p.add_argument("--calibration", choices=quantize.CALIBRATION_METHODS, default="minmax")
    p.add_argument("--count", type=int, default=64, help="calibration images")
    p.add_argument("--tolerance", type=float, default=1.0, help="metric points INT8 may lose")
    p.add_argument("--limit", type=int, help="evaluate on at most this many validation images")
    p.add_argument("--tensorrt", action="store_true", help="also build TensorRT engines (needs TensorRT)")
    p.add_argument("--engine-dir", type=Path)
    p.add_argument("--dynamic-batch", action="store_true",
                   help="only give this artifact and its variants a dynamic batch axis (checked; see batch_axis.py)")
    add_tile_flags(p)
    add_progress_flag(p)
    a = p.parse_args(argv)
    if a.dynamic_batch:
        from .batch_axis import BatchAxisError, dynamic_family
        try:
            print(json.dumps(dynamic_family(a.onnx), indent=1))
        except BatchAxisError as exc:
            print(f"edge-app build: {exc}", file=sys.stderr)
            return 1
        return 0
    precisions = tuple(x for x in a.precisions.split(",") if x)
    bad = [x for x in precisions if x not in PRECISIONS]
    if bad:
        p.error(f"unknown precisions {bad}")
    table = build(a.onnx, data=a.data, val=a.val_data, precisions=precisions, method=a.calibration,
                  count=a.count, tolerance=a.tolerance, limit=a.limit, tensorrt=a.tensorrt, engine_dir=a.engine_dir,
                  progress=not a.no_progress, tiles=spec_from_flags(a))
    print(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
