"""Backends by name; each is imported only when chosen (OpenVINO needs the [openvino] extra, TensorRT needs
tensorrt + pycuda). ``PRECISIONS`` says which precisions each one runs."""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from .base import Backend, BackendError

BACKENDS = {
    "onnxruntime": "edge_app.backends.onnxruntime:OnnxRuntimeBackend",
    "openvino": "edge_app.backends.openvino:OpenVinoBackend",
    "tensorrt": "edge_app.backends.tensorrt:TensorRTBackend",
}
# Precisions each backend runs; bf16 is the FP32 file computed in bfloat16 (no file of its own).
PRECISIONS = {
    "onnxruntime": ("fp32", "fp16", "int8", "int8-qdq"),
    "openvino": ("fp32", "bf16", "fp16", "int8", "int8-qdq"),
    "tensorrt": ("fp32", "fp16", "int8", "int8-qdq"),
}

__all__ = ["BACKENDS", "PRECISIONS", "Backend", "BackendError", "create_backend", "installed"]


def create_backend(name: str, path: Path, **kwargs: Any) -> Backend:
    """Open ``path`` with the backend called ``name`` (a key of BACKENDS)."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}: expected one of {sorted(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(path, **kwargs)


def installed(name: str) -> bool:
    """Whether a backend's package is importable here (without opening anything)."""
    if name == "tensorrt":  # tensorrt-stubs alone leaves an empty namespace: ask the real check
        from .tensorrt import import_tensorrt
        try:
            import_tensorrt()
        except BackendError:
            return False
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ValueError, ImportError):  # in sys.modules as None: blocked, as good as absent
        return False
