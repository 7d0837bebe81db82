"""Backend x precision side by side, for ``edge-app calibrate``: every precision variant present on every
CPU backend installed (ONNX Runtime; OpenVINO with the [openvino] extra: FP32, BF16 where the CPU has it,
our INT8 QDQ files), each run over the same labelled images through the runtime's own code: the task
metric, its delta against FP32 on ONNX Runtime, latency (all candidates timed taking turns) and size.
The recommendation is the fastest candidate within the tolerance (``edge_app.inference.choice.pick``, the
rule the runtime re-applies on another CPU). TensorRT engines are compared where TensorRT is installed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_app.backends import PRECISIONS as BACKEND_PRECISIONS
from edge_app.backends import installed
from edge_app.backends.cpu import cpu_info
from edge_app.core.artifact import read_meta
from edge_app.core.task_metric import metric_name, metric_value
from edge_app.datasets import Dataset, load_image
from edge_app.inference.artifacts import variant_path
from edge_app.inference.choice import MIN_SPEEDUP, pick

from .evaluate import measure_latencies, open_for_eval, run_detection, run_segmentation

CPU_BACKENDS = ("onnxruntime", "openvino")
# What a recommendation file keeps of each row ("table": what inspect shows, what the runtime re-times
# on another CPU).
TABLE_KEYS = ("backend", "precision", "file", "metric", "value", "delta_points", "median_ms", "p90_ms",
              "speedup_vs_fp32", "within_tolerance", "size_mb")


def candidates(fp32: Path, backends: tuple[str, ...] = CPU_BACKENDS) -> list[tuple[str, str]]:
    """(backend, precision) pairs to compare: files present x backends installed x what the CPU computes.
    FP16 files run on ONNX Runtime only: on a CPU both backends compute them in float32 (slower than FP32:
    the casts), so OpenVINO's row would say nothing new."""
    cpu = cpu_info()
    out = []
    for backend in backends:
        if not installed(backend):
            continue
        for precision in BACKEND_PRECISIONS[backend]:
            if (backend, precision) == ("openvino", "fp16") or (precision == "bf16" and not cpu.has("BF16")):
                continue
            if variant_path(fp32, precision).is_file():
                out.append((backend, precision))
    return out


def compare(fp32: Path, dataset: Dataset, tolerance: float, limit: int | None, progress: bool,
            target: Any = None, backends: tuple[str, ...] = CPU_BACKENDS) -> tuple[list, dict]:
    """Every candidate: task metric, delta vs FP32 on ONNX Runtime (the first row), latency, size.
    Returns (rows, runs): runs[(backend, precision)] = (model, its run over the dataset)."""
    rows: list[dict[str, Any]] = []
    runs: dict[tuple[str, str], tuple[Any, Any]] = {}
    probe = load_image(dataset.samples[0].image_path)
    kw = {"tiles": target.tiles, "class_groups": target.class_groups} if target is not None else {}
    for backend, precision in candidates(fp32, backends):
        path = variant_path(fp32, precision)
        model = open_for_eval(path, backend=backend, precision=precision, **kw)
        run: Any
        n = len(model.classes)
        if model.task == "detection":
            run = run_detection(model, dataset, progress, limit, keep_raw=True)
            r = run.report()
            extra = {"mAP": r.map}
        else:
            run = r = run_segmentation(model, dataset, progress, limit)
            extra = {"mIoU": r.miou}
        runs[(backend, precision)] = (model, run)
        rows.append({"backend": backend, "precision": precision, "file": path.name,
                     "providers": list(getattr(model.backend, "providers", []) or [backend]),
                     "metric": metric_name(model.task, n), "value": metric_value(model.task, n, r), **extra,
                     "size_mb": round(path.stat().st_size / 2**20, 2)})
    # Timed together, taking turns, once every candidate is loaded (see measure_latencies).
    latency = measure_latencies({f"{b}/{p}": m for (b, p), (m, _) in runs.items()}, probe)
    for row in rows:
        row.update(latency[f"{row['backend']}/{row['precision']}"])
    base = rows[0]
    for row in rows:
        row["delta_points"] = round(100 * (row["value"] - base["value"]), 3)
        row["within_tolerance"] = -row["delta_points"] <= tolerance
        row["speedup_vs_fp32"] = round(base["median_ms"] / row["median_ms"], 3)
    return rows, runs


def recommend(rows: list[dict[str, Any]], min_speedup: float = MIN_SPEEDUP) -> tuple[dict[str, Any], str]:
    """The fastest candidate within the metric tolerance, at least ``min_speedup`` faster than FP32 on ONNX
    Runtime (a 1 % lead is timing noise on a shared machine, and that is the reference); only a candidate
    whose metric was measured and passed can be chosen. Returns (its row, why)."""
    best = pick(rows, min_speedup)
    if best is rows[0]:
        return best, (f"no other backend x precision is at least {min_speedup:.2f}x faster within the tolerance "
                      f"on this CPU ({cpu_info().describe()})")
    return best, (f"{best['speedup_vs_fp32']:.2f}x faster than fp32 on onnxruntime, {best['delta_points']:+.2f} "
                  f"points, on {cpu_info().describe()}")


def compare_engines(fp32: Path, engine_dir: Path, dataset: Dataset, base: dict[str, Any], limit: int | None,
                    progress: bool) -> tuple[list[dict[str, Any]], str]:
    """TensorRT engines of this model, run over the same images where TensorRT is here; the note says
    exactly what was compared (rows are shown beside the CPU candidates, not recommended: the runtime
    picks an up-to-date engine of the configured precision by itself)."""
    from edge_app.backends import create_backend
    from edge_app.backends.tensorrt import device_info
    from edge_app.inference.artifacts import check_engine, engine_paths
    from edge_app.inference.models import ModelSpec, NetworkModel

    found = [(p, *engine_paths(engine_dir, fp32, p)) for p in ("fp32", "fp16", "int8")]
    present = [(p, e, m) for p, e, m in found if e.is_file()]
    device = device_info()
    if device is None:
        return [], (f"TensorRT engines not compared: TensorRT/pycuda are not installed on this machine "
                    f"({len(present)} engine file(s) in {engine_dir}); every row runs on the CPU")
    rows: list[dict[str, Any]] = []
    meta = read_meta(fp32)
    for precision, engine, manifest in present:
        check = check_engine(engine, manifest, fp32, device)
        if not check.usable:
            rows.append({"precision": precision, "file": engine.name, "backend": "tensorrt", "skipped": check.reason})
            continue
        spec = ModelSpec(f"{fp32.stem}-trt-{precision}", "detector" if meta.task == "detection" else "segmenter",
                         fp32, precision=precision, backend="tensorrt")
        model = NetworkModel(spec, meta, create_backend("tensorrt", engine), engine, precision)
        n = len(model.classes)
        r: Any = (run_detection(model, dataset, progress, limit).report() if meta.task == "detection"
                  else run_segmentation(model, dataset, progress, limit))
        value = metric_value(meta.task, n, r)
        rows.append({"precision": precision, "file": engine.name, "backend": "tensorrt",
                     "gpu": device["gpu"], "metric": metric_name(meta.task, n), "value": value,
                     "delta_points": round(100 * (value - base["value"]), 3)})
        model.close()
    return rows, (f"TensorRT {device['tensorrt']} on {device['gpu']}: {len(rows)} engine(s) of {engine_dir} "
                  "run over the same images")


def machine_description() -> str:
    """The CPU a recommendation was measured on (INT8's and BF16's speed-ups depend on it)."""
    return cpu_info().describe()
