"""Which file a model runs from: precision variants of an ONNX, and TensorRT engines with manifests.

Layout written by ``edge-app build`` beside ``model.onnx`` (FP32): ``model.fp16.onnx``,
``model.int8.onnx`` (ONNX Runtime CPU style), ``model.int8-qdq.onnx`` (TensorRT style). Engines live in
the engine folder as ``<stem>.<precision>.engine`` with ``<stem>.<precision>.manifest.json`` (TensorRT
version, GPU, compute capability, ONNX sha256, precision, build flags). ``calibrate --apply`` writes
``model.precision.json`` naming the recommended precision.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.artifact import COMPUTED_FROM, PRECISIONS, ArtifactError, ArtifactMeta, sha256_file, write_atomic

ONNX_VARIANTS = {p: "{stem}.onnx" if p == "fp32" else f"{{stem}}.{p}.onnx" for p in PRECISIONS}


def engine_precision(precision: str) -> str:
    """The TensorRT engine a precision runs as: both INT8 recipes make an INT8 engine; bf16 (a CPU
    precision) the FP32 one."""
    return "int8" if precision.startswith("int8") else COMPUTED_FROM.get(precision, precision)


def variant_path(fp32_onnx: Path, precision: str) -> Path:
    """The file a precision runs from (bf16: the FP32 file, computed in bfloat16 by the backend)."""
    fp32_onnx = Path(fp32_onnx)
    precision = COMPUTED_FROM.get(precision, precision)
    if precision not in ONNX_VARIANTS:
        raise ArtifactError(f"unknown precision {precision!r}: expected one of {sorted(ONNX_VARIANTS)}")
    return fp32_onnx.with_name(ONNX_VARIANTS[precision].format(stem=fp32_onnx.stem))


def recommendation_path(fp32_onnx: Path) -> Path:
    return Path(fp32_onnx).with_name(f"{Path(fp32_onnx).stem}.precision.json")


WHOLE_FRAME = "whole frame"  # TileSpec().setting: what a recommendation without a setting was measured on


def write_recommendation(fp32_onnx: Path, entry: dict[str, Any], setting: str = WHOLE_FRAME) -> Path:
    """calibrate --apply's choice for the setting it measured (``TileSpec.setting``): ``by_setting`` keeps
    one per setting, the file's top level is the whole frame's (else the latest; what older readers see), so a model that runs whole frames in one
    config and tiles in another finds the precision measured for each (INT8 calibrated and gated on
    whole frames can lose points on tiles). Written atomically."""
    path = recommendation_path(fp32_onnx)
    try:
        old = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        old = {}
    by = {k: v for k, v in (old.get("by_setting") or {}).items()
          if isinstance(v, dict) and v.get("onnx_sha256") == entry.get("onnx_sha256")}  # another model's: gone
    top = {k: v for k, v in old.items() if k != "by_setting"}
    if top.get("precision") and top.get("onnx_sha256") == entry.get("onnx_sha256"):
        by.setdefault(top.get("setting", WHOLE_FRAME), {**top, "setting": top.get("setting", WHOLE_FRAME)})
    by[setting] = {**entry, "setting": setting}
    write_atomic(path, json.dumps({**by.get(WHOLE_FRAME, by[setting]), "by_setting": by}) + "\n")
    return path


def recommended_precision(fp32_onnx: Path, fp32_sha256: str | None = None, setting: str = WHOLE_FRAME) -> str | None:
    """calibrate's precision for this model run as ``setting`` (``TileSpec.setting``), or None: none made,
    made for another version of it, or measured on another setting (a tiled model never runs an INT8
    that was gated on whole frames: it runs FP32 and the log says to calibrate it with its tiles);
    ``choice.read_recommendation`` reads the whole entry (backend, CPU, candidates)."""
    from .choice import read_recommendation

    rec = read_recommendation(fp32_onnx, fp32_sha256, setting)
    return rec.precision if rec is not None else None


def gate_setting(variant_meta: ArtifactMeta) -> str | None:
    """The setting (``TileSpec.setting``) build gated and calibrated this variant on, from the table it
    wrote into the variant's metadata; None when no table (not made by build)."""
    rows = [r for r in variant_meta.extra.get("precision_table") or []
            if isinstance(r, dict) and r.get("precision") == variant_meta.precision]
    return str(rows[0].get("setting", WHOLE_FRAME)) if rows else None


def stale_variant(variant_meta: ArtifactMeta, fp32_sha256: str) -> bool:
    """True when a variant records that it was built from another FP32 model than this one."""
    source = variant_meta.extra.get("source_onnx_sha256")
    return bool(source) and source != fp32_sha256


def engine_paths(engine_dir: Path, fp32_onnx: Path, precision: str) -> tuple[Path, Path]:
    stem = f"{Path(fp32_onnx).stem}.{precision}"
    return Path(engine_dir) / f"{stem}.engine", Path(engine_dir) / f"{stem}.manifest.json"


@dataclass(frozen=True)
class EngineCheck:
    usable: bool
    reason: str


def check_engine(engine: Path, manifest: Path, onnx_path: Path, device: dict[str, str] | None) -> EngineCheck:
    """Whether an engine can be used for this ONNX on this device (TensorRT version, GPU, checksum).

    device: {"tensorrt": version, "gpu": name, "compute_capability": "8.7"} of the running machine.
    """
    if not engine.is_file():
        return EngineCheck(False, f"no engine at {engine}")
    if not manifest.is_file():
        return EngineCheck(False, f"{engine} has no manifest {manifest}")
    try:
        m = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        return EngineCheck(False, f"{manifest}: unreadable ({exc.msg})")
    if onnx_path.is_file() and m.get("onnx_sha256") != sha256_file(onnx_path):
        return EngineCheck(False, f"{engine} was built from another version of {onnx_path.name}")
    if device is not None:
        for key in ("tensorrt", "gpu", "compute_capability"):
            if str(m.get(key)) != str(device.get(key)):
                return EngineCheck(False, f"{engine} was built for {key} {m.get(key)!r}, this device has "
                                          f"{device.get(key)!r}")
    return EngineCheck(True, "up to date")
