"""Which backend x precision a model runs at: the config's, or calibration's recommendation for this CPU.

``edge-app calibrate --apply`` writes ``<model>.precision.json``: per setting (whole frame, or its tiles) the
chosen backend and precision, the CPU it was measured on (``cpu.signature()``) and every candidate it
measured (``table``: metric delta, gate, latency).
With ``precision = "auto"``:

- same kind of CPU: the recommendation, or, where its backend is not installed here or the config fixes
  another backend, the fastest candidate that passed the gate and runs here (its measured latency holds);
- another kind of CPU: the candidates that passed the accuracy gate (accuracy does not depend on the CPU,
  speed does) are timed again here, at start, and the fastest wins by the same rule as calibrate's
  (``pick``); a recommendation without its candidates is not guessed from: FP32 on ONNX Runtime.
"""
from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import PRECISIONS as BACKEND_PRECISIONS
from ..backends import BackendError, create_backend, installed
from ..backends.cpu import CpuInfo, cpu_info
from ..core.artifact import RUN_PRECISIONS, ArtifactError
from . import artifacts

log = logging.getLogger("edge_app.models")

# Another precision or backend must beat FP32 on ONNX Runtime by this much to be chosen over it: a 1 %
# lead is timing noise on a shared machine, and FP32 on ONNX Runtime is the reference (calibrate too).
MIN_SPEEDUP = 1.05
CPU_BACKENDS = ("onnxruntime", "openvino")


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    why: str


@dataclass(frozen=True)
class Recommendation:
    """A precision file as read: the choice, the CPU it was measured on (None: a file from before the
    signature was recorded) and the candidates measured (dicts: backend, precision, within_tolerance,
    median_ms, delta_points)."""

    backend: str
    precision: str
    cpu: dict[str, Any] | None
    machine: str
    candidates: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def read_recommendation(fp32_onnx: Path, fp32_sha256: str | None = None,
                        setting: str = artifacts.WHOLE_FRAME) -> Recommendation | None:
    """calibrate's recommendation for this model run as ``setting`` (``TileSpec.setting``: the whole frame
    or its tiles), or None: none made, made for another version of the model, measured on another
    setting (a tiled model never runs an INT8 gated on whole frames), or made without a measured metric."""
    path = artifacts.recommendation_path(fp32_onnx)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        by = data.get("by_setting") or {}
        if setting in by:
            data = by[setting]
        elif data.get("setting", artifacts.WHOLE_FRAME) != setting:
            made = sorted(set(by) | {data.get("setting", artifacts.WHOLE_FRAME)})
            log.warning("%s was measured on %s, this model runs %s: ignored, running fp32 (run edge-app "
                        "calibrate --apply with the model's tiles)", path, " and ".join(made), setting)
            return None
        precision, backend = str(data["precision"]), str(data.get("backend", "onnxruntime"))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{path}: unreadable precision recommendation ({exc})") from None
    made_for = data.get("onnx_sha256")
    if fp32_sha256 and made_for and made_for != fp32_sha256:
        log.warning("%s was made for another version of %s: ignored (run edge-app calibrate again)", path, fp32_onnx)
        return None
    if precision not in RUN_PRECISIONS or backend not in CPU_BACKENDS + ("tensorrt",):
        raise ArtifactError(f"{path}: backend {backend!r} x precision {precision!r}: expected a backend of "
                            f"{CPU_BACKENDS} and a precision of {RUN_PRECISIONS}")
    if precision != "fp32" and data.get("checked") is not True:
        # auto never runs a variant whose accuracy nobody measured (a build without validation data)
        log.warning("%s recommends %s without a measured metric: ignored, running fp32 (run edge-app "
                    "calibrate --apply)", path, precision)
        return None
    # "table": calibrate's rows as --apply keeps them (rows of files from before backends say none: ONNX Runtime)
    cands = tuple({"backend": "onnxruntime", **c} for c in data.get("table") or data.get("candidates") or []
                  if isinstance(c, dict))
    return Recommendation(backend, precision, data.get("cpu"), str(data.get("machine", "")), cands)


def passed(row: dict[str, Any]) -> bool:
    """A candidate the runtime may choose: FP32, or a measured metric within the tolerance."""
    return row.get("precision") == "fp32" or row.get("within_tolerance") is True


def pick(rows: Sequence[dict[str, Any]], min_speedup: float = MIN_SPEEDUP) -> dict[str, Any]:
    """The fastest row that passed, at least ``min_speedup`` faster than the baseline (``rows[0]``: FP32 on
    ONNX Runtime); the baseline itself when none is. Rows: backend, precision, median_ms, within_tolerance."""
    base = rows[0]
    ok = [base] + [r for r in rows[1:] if passed(r) and r.get("median_ms")
                   and base["median_ms"] / r["median_ms"] >= min_speedup]
    return min(ok, key=lambda r: r["median_ms"])


def runnable(backend: str, precision: str, fp32: Path, cpu: CpuInfo) -> str | None:
    """Why this backend x precision cannot run here (None when it can)."""
    if precision not in BACKEND_PRECISIONS.get(backend, ()):
        return f"backend {backend} does not run {precision}"
    if not installed(backend):
        return f"backend {backend} is not installed"
    if precision == "bf16" and not cpu.has("BF16"):
        return f"this CPU ({cpu.model}) has no BF16"
    if not artifacts.variant_path(fp32, precision).is_file():
        return f"{artifacts.variant_path(fp32, precision).name} is missing"
    return None


def time_candidates(fp32: Path, candidates: Sequence[tuple[str, str]], input_shape: tuple[int, ...],
                    threads: int, rounds: int = 3, runs: int = 4) -> dict[tuple[str, str], float]:
    """Median ms of one call per backend x precision on a blank input (convolutions take as long on any
    pixels), the candidates taking turns so that load from elsewhere falls on all alike."""
    opened = {}
    for backend, precision in candidates:
        try:
            opened[(backend, precision)] = create_backend(backend, artifacts.variant_path(fp32, precision),
                                                          threads=threads, precision=precision)
        except BackendError as exc:
            log.warning("%s on %s %s not timed: %s", fp32.name, backend, precision, exc)
    times: dict[tuple[str, str], list[float]] = {k: [] for k in opened}
    x = np.zeros(input_shape, np.float32)
    for b in opened.values():
        b.infer({b.input_names[0]: x})  # warm-up: first calls allocate
    for _ in range(rounds):
        for key, b in opened.items():
            for _ in range(runs):
                t0 = time.perf_counter()
                b.infer({b.input_names[0]: x})
                times[key].append((time.perf_counter() - t0) * 1e3)
    for b in opened.values():
        b.close()
    return {k: statistics.median(v) for k, v in times.items()}


def _fixed(backend: str) -> str:
    return "onnxruntime" if backend == "auto" else backend


def resolve(backend: str, precision: str, fp32: Path, fp32_sha256: str | None, *, threads: int = 2,
            input_shape: tuple[int, ...] = (1, 3, 224, 224), cpu: CpuInfo | None = None,
            timer: Callable[..., dict[tuple[str, str], float]] = time_candidates,
            setting: str = artifacts.WHOLE_FRAME) -> Choice:
    """The CPU backend x precision to run (TensorRT engines are chosen before this, by the caller).

    backend: the config's ("auto", "onnxruntime", "openvino"); precision: the config's ("auto" or one of
    RUN_PRECISIONS). An explicit pair is returned as it is (the backend reports what it cannot run)."""
    cpu = cpu or cpu_info()
    if backend != "auto" and precision != "auto":
        return Choice(backend, precision, "as configured")
    rec = read_recommendation(fp32, fp32_sha256, setting)
    if precision != "auto":  # backend auto: the one that ran this precision fastest here, if measured
        default = "openvino" if precision == "bf16" else "onnxruntime"
        if rec is None or rec.cpu is None or not cpu.same_kind(rec.cpu):
            return Choice(default, precision, "precision as configured")
        rows = [c for c in rec.candidates if c.get("precision") == precision and c.get("median_ms")
                and runnable(c["backend"], precision, fp32, cpu) is None]
        if not rows:
            return Choice(default, precision, "precision as configured")
        best = min(rows, key=lambda r: r["median_ms"])
        return Choice(best["backend"], precision, f"precision as configured, on the backend calibrate measured "
                                                  f"fastest for it on this CPU ({best['median_ms']:.1f} ms)")
    if rec is None:
        return Choice(_fixed(backend), "fp32", "no recommendation from edge-app calibrate")
    wanted = CPU_BACKENDS if backend == "auto" else (backend,)
    if rec.cpu is None:  # a file from before CPU signatures: its choice, on ONNX Runtime, as it then was
        p = rec.precision if rec.backend in wanted and runnable(rec.backend, rec.precision, fp32, cpu) is None \
            else "fp32"
        return Choice(_fixed(backend) if backend != "auto" else rec.backend if p != "fp32" else "onnxruntime", p,
                      f"recommendation made on {rec.machine or 'an unrecorded CPU'}")
    if cpu.same_kind(rec.cpu):
        if rec.backend in wanted and runnable(rec.backend, rec.precision, fp32, cpu) is None:
            return Choice(rec.backend, rec.precision, f"calibrate's recommendation for this CPU ({cpu.model})")
        rows = [c for c in rec.candidates if c.get("backend") in wanted and passed(c) and c.get("median_ms")
                and runnable(c["backend"], c["precision"], fp32, cpu) is None]
        base = next((r for r in rows if r["precision"] == "fp32" and r["backend"] == _fixed(backend)), None)
        if base is not None:
            best = pick([base] + [r for r in rows if r is not base])
            return Choice(best["backend"], best["precision"], f"the fastest candidate calibrate measured on this CPU "
                                                              f"that runs here ({best['median_ms']:.1f} ms)")
        return Choice(_fixed(backend), "fp32", "calibrate's recommendation does not run here")
    # another kind of CPU: what passed the gate is re-timed here
    if not rec.candidates:
        log.warning("%s: the precision recommendation was measured on %s, this is %s, and it lists no candidates "
                    "to re-measure: running fp32 (run edge-app calibrate --apply on this machine)",
                    fp32.name, rec.machine, cpu.describe())
        return Choice(_fixed(backend), "fp32", f"measured on another CPU ({rec.machine}): not guessed")
    keys = [("onnxruntime" if backend == "auto" else backend, "fp32")]
    keys += [(c["backend"], c["precision"]) for c in rec.candidates if c.get("backend") in wanted and passed(c)
             and (c["backend"], c["precision"]) not in keys and runnable(c["backend"], c["precision"], fp32, cpu) is None]
    if len(keys) == 1:
        return Choice(keys[0][0], "fp32", f"measured on another CPU ({rec.machine}); nothing else runs here")
    ms = timer(fp32, keys, input_shape, threads)
    rows = [{"backend": b, "precision": p, "median_ms": ms[(b, p)], "within_tolerance": True}
            for b, p in keys if (b, p) in ms]
    if not rows or (rows[0]["backend"], rows[0]["precision"]) != keys[0]:
        return Choice(keys[0][0], "fp32", "re-measuring failed: the reference")
    best = pick(rows)
    log.info("%s: recommendation made on %s; re-measured on %s: %s", fp32.name, rec.machine, cpu.describe(),
             ", ".join(f"{r['backend']} {r['precision']} {r['median_ms']:.1f} ms" for r in rows))
    return Choice(best["backend"], best["precision"],
                  f"re-measured on this CPU ({cpu.model}; calibrated on {rec.machine}): {best['median_ms']:.1f} ms "
                  f"vs {rows[0]['median_ms']:.1f} ms fp32")
