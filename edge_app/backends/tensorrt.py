"""TensorRT engine backend (Jetson), written against the TensorRT 10 Python API with name-based tensors.

``tensorrt`` (from JetPack: python3-libnvinfer) and ``pycuda`` (the [jetson] extra) are imported only when
an engine is opened. The backend owns its page-locked host buffers, device buffers and CUDA stream.
Not executed on our CI machines (no GPU, no TensorRT); see the README.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .base import BackendError


def import_tensorrt() -> Any:
    """The tensorrt module, or BackendError saying where TensorRT comes from."""
    try:
        import tensorrt as trt
    except ImportError:
        trt = None
    if trt is None or not hasattr(trt, "Builder"):  # tensorrt-stubs alone leaves an empty namespace
        raise BackendError("TensorRT is not installed: on a Jetson it comes with JetPack "
                           "(apt install python3-libnvinfer); use backend = \"onnxruntime\" elsewhere")
    return trt


def device_info() -> dict[str, str] | None:
    """{"tensorrt": version, "gpu": name, "compute_capability": "8.7"} of this machine's first GPU (what
    an engine manifest records and the runtime compares), or None without TensorRT or pycuda."""
    try:
        trt = import_tensorrt()
        import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
        import pycuda.driver as cuda
    except (BackendError, ImportError):
        return None
    dev = cuda.Device(0)
    major, minor = dev.compute_capability()
    return {"tensorrt": trt.__version__, "gpu": dev.name(), "compute_capability": f"{major}.{minor}"}


def _import_tensorrt() -> tuple[Any, Any]:
    trt = import_tensorrt()
    try:
        import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
        import pycuda.driver as cuda
    except ImportError:
        raise BackendError("pycuda is not installed: pip install -e '.[jetson]'") from None
    return trt, cuda


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, path: Path, **_: Any) -> None:
        trt, cuda = _import_tensorrt()
        self._cuda = cuda
        self.path = Path(path)
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise BackendError(f"{path}: TensorRT could not deserialize the engine (built for another "
                               "TensorRT version or GPU?)")
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = cuda.Stream()
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, Any] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        inputs: list[str] = []
        outputs: list[str] = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise BackendError(f"{path}: tensor {name} has a dynamic shape {shape}; build with a fixed one")
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            host = cuda.pagelocked_empty(int(np.prod(shape)), dtype)
            device = cuda.mem_alloc(host.nbytes)
            self._context.set_tensor_address(name, int(device))
            self._host[name], self._device[name], self._shapes[name] = host, device, shape
            (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
        self.input_names, self.output_names = tuple(inputs), tuple(outputs)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        for name in self.input_names:
            arr = inputs[name]
            if tuple(arr.shape) != self._shapes[name]:
                raise BackendError(f"{self.path}: input {name} has shape {arr.shape}, engine wants {self._shapes[name]}")
            np.copyto(self._host[name], arr.ravel().astype(self._host[name].dtype, copy=False))
            cuda.memcpy_htod_async(self._device[name], self._host[name], self._stream)
        if not self._context.execute_async_v3(self._stream.handle):
            raise BackendError(f"{self.path}: execute_async_v3 failed")
        for name in self.output_names:
            cuda.memcpy_dtoh_async(self._host[name], self._device[name], self._stream)
        self._stream.synchronize()
        return {n: self._host[n].reshape(self._shapes[n]).copy() for n in self.output_names}

    def close(self) -> None:
        for mem in self._device.values():
            mem.free()
        self._device.clear()
