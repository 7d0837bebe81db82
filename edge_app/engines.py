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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import BackendError
from .backends.tensorrt import import_tensorrt
from .core.artifact import ArtifactError, read_meta, sha256_file, write_atomic
from .core.preprocess import Preprocessor
from .inference.artifacts import engine_paths, variant_path

PRECISIONS = ("fp32", "fp16", "int8")


def _trt() -> Any:
    try:
        return import_tensorrt()
    except BackendError as exc:
        raise ArtifactError(f"{exc} (engines are built on the device)") from None


def device_info() -> dict[str, str]:
    trt = _trt()
    import pycuda.autoinit  # noqa: F401
    import pycuda.driver as cuda

    dev = cuda.Device(0)
    major, minor = dev.compute_capability()
    return {"tensorrt": trt.__version__, "gpu": dev.name(), "compute_capability": f"{major}.{minor}"}


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


def build_engine(fp32_onnx: Path, precision: str, engine_dir: Path, *, images: list[np.ndarray] | None = None,
                 workspace_mb: int = 1024, log: Callable[[str], None] = print) -> Path:
    """Build (or rebuild) one engine; returns its path. Raises ArtifactError with the parser's errors."""
    trt = _trt()
    if precision not in PRECISIONS:
        raise ArtifactError(f"unknown engine precision {precision!r}: expected one of {PRECISIONS}")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    has_flags = hasattr(trt.BuilderFlag, "FP16")
    typed = not has_flags and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    qdq = variant_path(fp32_onnx, "int8-qdq")
    source = {"fp32": fp32_onnx, "fp16": variant_path(fp32_onnx, "fp16") if typed else fp32_onnx,
              "int8": qdq if (qdq.is_file() or typed) else fp32_onnx}[precision]
    if not source.is_file():
        raise ArtifactError(f"{source} not found: run `edge-app build {fp32_onnx}` first")
    flags = (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)) if typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(source.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"{source}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    used: list[str] = ["STRONGLY_TYPED"] if typed else []
    if has_flags and precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
        used.append("FP16")
    if has_flags and precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        used.append("INT8")
        if source == fp32_onnx:  # no QDQ: implicit calibration with a cache
            if not hasattr(trt, "IInt8EntropyCalibrator2"):
                raise ArtifactError("this TensorRT has no calibrators: build the QDQ ONNX (edge-app build)")
            pre = Preprocessor.from_meta(read_meta(fp32_onnx))
            cache = engine_dir / f"{fp32_onnx.stem}.int8.calibration.cache"
            config.int8_calibrator = EntropyCalibrator([pre(i)[0] for i in (images or [])], cache)
            used.append("implicit-calibration")
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
                                       "flags": used, "build_seconds": round(time.monotonic() - t0, 1),
                                       "built_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
    log(f"engine {engine} built in {time.monotonic() - t0:.0f} s")
    return engine


def build_engines(fp32_onnx: Path, engine_dir: Path, precisions: tuple[str, ...] = PRECISIONS,
                  log: Callable[[str], None] = print) -> list[Path]:
    return [build_engine(Path(fp32_onnx), p, Path(engine_dir), log=log) for p in precisions]
