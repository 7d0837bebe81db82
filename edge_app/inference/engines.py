"""TensorRT engines from our ONNX artifacts, on the device that will run them (no torch needed).

Written against the TensorRT 10 Python API and branching on what the installed TensorRT has, not on
version strings: with builder precision flags (TensorRT <= 10, JetPack 5/6) FP16 is a flag on the FP32
ONNX and INT8 uses the QDQ ONNX (explicit quantization) or, for a model without QDQ, the implicit
entropy calibrator with a calibration cache; without them (TensorRT 11) a strongly typed network is
built from the FP16 or QDQ ONNX. The timing cache is reused across builds. Each engine is written
atomically next to a manifest (TensorRT version, GPU, compute capability, ONNX sha256, precision,
flags) that the runtime checks before using it. Not executed on our CI machines (no GPU, no TensorRT).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.base import BackendError
from ..backends.tensorrt import device_info as gpu_info
from ..backends.tensorrt import import_tensorrt
from ..core.artifact import ArtifactError, read_meta, sha256_file, write_atomic
from ..frames.preprocess import Preprocessor
from .artifacts import engine_paths, variant_path

PRECISIONS = ("fp32", "fp16", "int8")


def _trt() -> Any:
    try:
        return import_tensorrt()
    except BackendError as exc:
        raise ArtifactError(f"{exc} (engines are built on the device)") from None


def device_info() -> dict[str, str]:
    _trt()
    info = gpu_info()
    if info is None:
        raise ArtifactError("pycuda is not installed or finds no GPU: pip install -e '.[jetson]' on the device")
    return info


class EntropyCalibrator:
    """Implicit INT8 calibration (TensorRT <= 10) over images preprocessed as the runtime does."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        trt = _trt()
        import pycuda.driver as cuda

        base: Any = trt.IInt8EntropyCalibrator2

        class _Calibrator(base):
            def __init__(self, batches: list[np.ndarray], cache: Path) -> None:
                super().__init__()
                self.batches, self.cache, self.i = batches, cache, 0
                self.device = cuda.mem_alloc(batches[0].nbytes) if batches else None

            def get_batch_size(self) -> int:
                return 1

            def get_batch(self, names: list[str]) -> list[int] | None:
                if self.i >= len(self.batches):
                    return None
                cuda.memcpy_htod(self.device, np.ascontiguousarray(self.batches[self.i]))
                self.i += 1
                return [int(self.device)]  # type: ignore[arg-type]

            def read_calibration_cache(self) -> bytes | None:
                return self.cache.read_bytes() if self.cache.is_file() else None

            def write_calibration_cache(self, cache: bytes) -> None:
                write_atomic(self.cache, bytes(cache))

        return _Calibrator(*args, **kwargs)


@dataclass(frozen=True)
class EnginePlan:
    """What one engine build does, decided without TensorRT (so it is tested everywhere).

    source: the ONNX parsed; flags: builder flags (FP16, INT8) or STRONGLY_TYPED; calibration: None,
    "cache" (an implicit-INT8 calibration cache from an earlier build is reused) or "images";
    batches: (1, C, H, W) float32 network inputs, preprocessed as the runtime does, for "images".
    """

    precision: str
    source: Path
    flags: tuple[str, ...]
    calibration: str | None = None
    batches: tuple[np.ndarray, ...] = ()
    cache: Path | None = None


def plan_engine(fp32_onnx: Path, precision: str, engine_dir: Path, *, images: list[np.ndarray] | None,
                has_flags: bool, typed: bool) -> EnginePlan:
    """The build for ``precision``: with builder flags (TensorRT <= 10) FP16 is a flag on the FP32 ONNX
    and INT8 parses the QDQ ONNX when ``edge-app build`` made one, else calibrates implicitly from
    ``images`` (BGR frames) or an existing calibration cache; strongly typed (TensorRT 11) parses the
    FP16 or QDQ variant. Raises ArtifactError when what it needs is missing (never zero batches)."""
    fp32_onnx, engine_dir = Path(fp32_onnx), Path(engine_dir)
    if precision not in PRECISIONS:
        raise ArtifactError(f"unknown engine precision {precision!r}: expected one of {PRECISIONS}")
    qdq = variant_path(fp32_onnx, "int8-qdq")
    if typed:
        source = {"fp32": fp32_onnx, "fp16": variant_path(fp32_onnx, "fp16"), "int8": qdq}[precision]
        flags: tuple[str, ...] = ("STRONGLY_TYPED",)
    else:
        source = qdq if precision == "int8" and qdq.is_file() else fp32_onnx
        flags = {"fp32": (), "fp16": ("FP16",), "int8": ("FP16", "INT8")}[precision] if has_flags else ()
    if not source.is_file():
        raise ArtifactError(f"{source} not found: run `edge-app build {fp32_onnx}` first")
    if precision != "int8" or typed or source == qdq:
        return EnginePlan(precision, source, flags)
    cache = engine_dir / f"{fp32_onnx.stem}.int8.calibration.cache"
    if images:
        pre = Preprocessor.from_meta(read_meta(fp32_onnx))
        return EnginePlan(precision, source, flags, "images", tuple(pre(i)[0] for i in images), cache)
    if cache.is_file():
        return EnginePlan(precision, source, flags, "cache", (), cache)
    raise ArtifactError(f"an INT8 engine of {fp32_onnx.name} needs calibration: no QDQ model ({qdq.name}), no "
                        f"calibration images and no calibration cache ({cache}); run `edge-app build --tensorrt "
                        f"{fp32_onnx}` (it calibrates on the training images), or build the QDQ variant")


def build_engine(fp32_onnx: Path, precision: str, engine_dir: Path, *, images: list[np.ndarray] | None = None,
                 workspace_mb: int = 1024, log: Callable[[str], None] = print, max_batch: int = 1,
                 opt_batch: int = 1) -> Path:
    """Build (or rebuild) one engine; returns its path. Raises ArtifactError with the parser's errors.

    images: BGR calibration frames for an implicit INT8 engine (see ``plan_engine``); max_batch, opt_batch:
    for an ONNX with a dynamic batch axis, the optimisation profile 1..max_batch tuned for opt_batch (the
    number of streams: the batch the runtime mostly runs)."""
    trt = _trt()
    has_flags = hasattr(trt.BuilderFlag, "FP16")
    typed = not has_flags and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    plan = plan_engine(fp32_onnx, precision, engine_dir, images=images, has_flags=has_flags, typed=typed)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    source = plan.source
    flags = (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)) if typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(source.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"{source}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    used = list(plan.flags)
    batch = [1, 1, 1]
    image = network.get_input(0)
    dims = tuple(image.shape)
    if dims and dims[0] == -1:  # a dynamic batch axis: one profile, 1..max, tuned for the streams' count
        top = max(1, int(max_batch))
        batch = [1, min(max(1, int(opt_batch)), top), top]
        profile = builder.create_optimization_profile()
        rest = tuple(int(d) for d in dims[1:])
        profile.set_shape(image.name, (1, *rest), (batch[1], *rest), (top, *rest))
        config.add_optimization_profile(profile)
        if plan.calibration is not None:
            config.set_calibration_profile(profile)
        used.append(f"batch {batch[0]}..{batch[2]} (opt {batch[1]})")
    for flag in plan.flags:
        if flag != "STRONGLY_TYPED":
            config.set_flag(getattr(trt.BuilderFlag, flag))
    if plan.calibration is not None:
        if not hasattr(trt, "IInt8EntropyCalibrator2"):
            raise ArtifactError("this TensorRT has no calibrators: build the QDQ ONNX (edge-app build)")
        assert plan.cache is not None
        config.int8_calibrator = EntropyCalibrator(list(plan.batches), plan.cache)
        used.append(f"implicit-calibration ({plan.calibration}: {len(plan.batches) or 'cached'})")
    timing_path = engine_dir / "timing.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing, False)
    log(f"building TensorRT {precision} engine from {source.name} ({', '.join(used) or 'FP32'}): minutes")
    t0 = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ArtifactError(f"{source}: TensorRT could not build a {precision} engine (see its log above)")
    engine, manifest = engine_paths(engine_dir, fp32_onnx, precision)
    write_atomic(engine, bytes(serialized))
    write_atomic(timing_path, bytes(config.get_timing_cache().serialize()))
    info = device_info()
    write_atomic(manifest, json.dumps({**info, "onnx_sha256": sha256_file(fp32_onnx), "source": source.name,
                                       "source_sha256": sha256_file(source), "precision": precision,
                                       "flags": used, "batch": batch, "build_seconds": round(time.monotonic() - t0, 1),
                                       "built_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
    log(f"engine {engine} built in {time.monotonic() - t0:.0f} s")
    return engine


def build_engines(fp32_onnx: Path, engine_dir: Path, precisions: tuple[str, ...] = PRECISIONS, *,
                  images: list[np.ndarray] | None = None, log: Callable[[str], None] = print) -> list[Path]:
    """Every engine precision; ``images`` calibrate an INT8 engine that has no QDQ model to parse."""
    return [build_engine(Path(fp32_onnx), p, Path(engine_dir), images=images, log=log) for p in precisions]
