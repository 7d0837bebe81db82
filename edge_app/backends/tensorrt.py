"""TensorRT engine backend (Jetson), written against the TensorRT 10 Python API with name-based tensors.

``tensorrt`` (from JetPack: python3-libnvinfer) and ``pycuda`` (the [jetson] extra) are imported only when
an engine is opened. The backend owns its page-locked host buffers, device buffers and CUDA stream.
Not executed on our CI machines (no GPU, no TensorRT); see docs/verified.md.
"""
from __future__ import annotations

import threading
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
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.max_batch: int | None = 1
        for name in names:  # inputs first: a dynamic batch is set to the profile's maximum to size buffers
            if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                continue
            shape = tuple(engine.get_tensor_shape(name))
            if shape and shape[0] == -1:
                top = tuple(engine.get_tensor_profile_shape(name, 0)[2])
                self._context.set_input_shape(name, top)
                self.max_batch, shape = int(top[0]), top
            if any(d < 0 for d in shape):
                raise BackendError(f"{path}: input {name} has a dynamic shape {shape} beyond the batch axis")
            inputs.append(name)
            self._shapes[name] = shape
        outputs = [n for n in names if n not in inputs]
        for name in outputs:
            self._shapes[name] = tuple(self._context.get_tensor_shape(name))  # at the largest batch
        for name in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            host = cuda.pagelocked_empty(int(np.prod(self._shapes[name])), dtype)
            device = cuda.mem_alloc(host.nbytes)
            self._context.set_tensor_address(name, int(device))
            self._host[name], self._device[name] = host, device
        self.input_names, self.output_names = tuple(inputs), tuple(outputs)
        self._lock = threading.Lock()  # one execution context and one set of buffers: one call at a time

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """inputs: name -> (N, ...) with N up to ``max_batch`` (exactly the engine's shape when fixed)."""
        with self._lock:
            return self._infer(inputs)

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        for name in self.input_names:
            arr = inputs[name]
            full = self._shapes[name]
            if tuple(arr.shape[1:]) != full[1:] or (self.max_batch == 1 and arr.shape[0] != full[0]) \
                    or arr.shape[0] > full[0]:
                raise BackendError(f"{self.path}: input {name} has shape {arr.shape}, engine takes {full} "
                                   f"(batch 1..{self.max_batch})")
            if self.max_batch != 1:
                self._context.set_input_shape(name, tuple(arr.shape))
            n = arr.size
            np.copyto(self._host[name][:n], arr.ravel().astype(self._host[name].dtype, copy=False))
            cuda.memcpy_htod_async(self._device[name], self._host[name][:n], self._stream)
        if not self._context.execute_async_v3(self._stream.handle):
            raise BackendError(f"{self.path}: execute_async_v3 failed")
        shapes = {n: tuple(self._context.get_tensor_shape(n)) for n in self.output_names}
        for name in self.output_names:
            size = int(np.prod(shapes[name]))
            cuda.memcpy_dtoh_async(self._host[name][:size], self._device[name], self._stream)
        self._stream.synchronize()
        return {n: self._host[n][:int(np.prod(shapes[n]))].reshape(shapes[n]).copy() for n in self.output_names}

    def close(self) -> None:
        for mem in self._device.values():
            mem.free()
        self._device.clear()
