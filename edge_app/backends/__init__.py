"""Backends by name; each is imported only when chosen (TensorRT needs tensorrt + pycuda)."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from .base import Backend, BackendError

BACKENDS = {
    "onnxruntime": "edge_app.backends.onnxruntime:OnnxRuntimeBackend",
    "tensorrt": "edge_app.backends.tensorrt:TensorRTBackend",
}

__all__ = ["BACKENDS", "Backend", "BackendError", "create_backend"]


def create_backend(name: str, path: Path, **kwargs: Any) -> Backend:
    """Open ``path`` with the backend called ``name`` (a key of BACKENDS)."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}: expected one of {sorted(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(path, **kwargs)
