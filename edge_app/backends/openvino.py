"""OpenVINO backend (x86 CPUs without a GPU: what Frigate recommends there): our ONNX artifacts as they
are, read by OpenVINO's ONNX frontend and compiled for the CPU plugin.

Precisions: ``fp32`` (the FP32 file computed in float32: OpenVINO's default on a CPU with BF16 would be
bfloat16, so it is asked for explicitly), ``bf16`` (the same file computed in bfloat16; only on a CPU
with AVX-512 BF16 or AMX), ``int8`` / ``int8-qdq`` (our QDQ files, run in INT8 by OpenVINO's
low-precision transformations, the rest in float32), ``fp16`` (FP16 weights, float32 compute on CPUs).
``requests``: how many calls may be in flight at once (OpenVINO's CPU streams, each with
``threads / requests`` threads): 1 for the lowest latency of one call, more for several frames or tiles
in flight (``infer_requests``). ``openvino`` is imported when a model is opened (the [openvino] extra).
"""
from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .base import BackendError
from .cpu import cpu_info

EXTRA = "pip install -e '.[openvino]' (or: pip install openvino)"
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int8-qdq")
_core: Any = None
_core_lock = threading.Lock()


def import_openvino() -> Any:
    """The openvino module, or BackendError naming the extra that installs it."""
    try:
        import openvino
    except ImportError:
        raise BackendError(f"OpenVINO is not installed: {EXTRA}") from None
    return openvino


def core() -> Any:
    """One ov.Core per process (it holds the plugins and their caches)."""
    global _core
    with _core_lock:
        if _core is None:
            _core = import_openvino().Core()
        return _core


def version() -> str | None:
    try:
        return str(import_openvino().__version__).split("-")[0]
    except BackendError:
        return None


def require_bf16(what: str) -> None:
    """BackendError naming the CPU feature when this CPU cannot compute in bfloat16."""
    cpu = cpu_info()
    if not cpu.has("BF16"):
        raise BackendError(f"{what}: bf16 needs a CPU with BF16 (AVX-512 BF16 or AMX; cpuinfo flag avx512_bf16 / "
                           f"amx_bf16); this {cpu.model} has none: use precision fp32 or int8")


def failing_nodes(path: Path) -> list[str]:
    """The nodes of an ONNX file that OpenVINO's frontend cannot convert, each as "'name' (OpType)"
    (a partial conversion leaves them as framework nodes); [] when all convert."""
    from openvino.frontend import FrontEndManager

    manager = FrontEndManager()
    fe = manager.load_by_framework("onnx")
    source = fe.load(str(path))  # kept alive while the nodes are read: their attributes point into it
    model = fe.convert_partially(source)
    out = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("ONNXFrameworkNode", "NotSupportedONNXNode", "FrameworkNode"):
            attrs = op.get_attributes()
            onnx_type = ".".join(x for x in (attrs.get("ONNX_META_domain", ""), attrs.get("ONNX_META_type", "")) if x)
            out.append(f"'{op.get_friendly_name()}' ({onnx_type or kind})")
    del model, source, fe, manager
    return out


def _reason(message: str) -> str:
    """The useful lines of an OpenVINO conversion error (its C++ source locations left out)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    keep = [ln.lstrip("- ") for ln in lines if not re.match(r"^(Check '|Exception from|While validating|FrontEnd API|"
                                                         r"Model wasn't|Summary:|Failed operations|-- .* with a "
                                                         r"message:$|-- Conversion is failed for)", ln)]
    return "; ".join(keep[-3:]) or (lines[-1] if lines else "unknown error")


def read(path: Path) -> Any:
    """OpenVINO's model of an ONNX file; BackendError naming the failing node(s) when it cannot convert."""
    ov_core = core()
    try:
        return ov_core.read_model(str(path))
    except Exception as exc:  # RuntimeError from the frontend: unsupported or malformed node
        try:
            nodes = failing_nodes(path)
        except Exception:  # the partial conversion fails too (a file that is not ONNX at all)
            nodes = []
        where = f"node {', '.join(nodes)}: " if nodes else ""
        raise BackendError(f"{path}: OpenVINO cannot convert it: {where}{_reason(str(exc))} (fold its constants "
                           f"with edge-app import, or use backend = \"onnxruntime\")") from None


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, path: Path, *, threads: int = 2, precision: str = "fp32", requests: int = 1,
                 pin: bool | None = None, **_: Any) -> None:
        import_openvino()  # the package first: its absence is the error to report
        if precision not in PRECISIONS:
            raise BackendError(f"{path}: precision {precision!r} does not run on OpenVINO: expected one of {PRECISIONS}")
        if precision == "bf16":
            require_bf16(str(path))
        model = read(path)
        self.path, self.precision = Path(path), precision
        self.requests = max(1, int(requests))
        self.threads = max(int(threads), self.requests)
        config: dict[str, Any] = {
            # every precision but bf16 computes its float parts in float32, as the gate measured them
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": self.requests,
            "PERFORMANCE_HINT": "LATENCY" if self.requests == 1 else "THROUGHPUT"}
        if pin is not None:
            config["ENABLE_CPU_PINNING"] = bool(pin)
        try:
            self.compiled = core().compile_model(model, "CPU", config)
        except Exception as exc:
            raise BackendError(f"{path}: OpenVINO cannot compile it for the CPU: {_reason(str(exc))}") from None
        self.input_names = tuple(i.get_any_name() for i in self.compiled.inputs)
        self.output_names = tuple(o.get_any_name() for o in self.compiled.outputs)
        first = model.inputs[0].get_partial_shape()
        dim = first[0] if first.rank.is_static and len(first) else None
        # The batch axis as exported: dynamic = any batch (None); a number = exactly that
        self.max_batch: int | None = None if dim is None or dim.is_dynamic else int(dim.get_length())
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    # An infer request is one set of buffers: each call takes an idle one (threads share the backend).
    def _take(self) -> Any:
        with self._lock:
            return self._idle.pop() if self._idle else self.compiled.create_infer_request()

    def _give(self, request: Any) -> None:
        with self._lock:
            self._idle.append(request)

    def _read(self, request: Any) -> dict[str, np.ndarray]:
        # copies: the request's output tensors are overwritten by its next call
        return {name: np.array(request.get_output_tensor(i).data, copy=True)
                for i, name in enumerate(self.output_names)}

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """inputs: name -> (N, ...) float32 -> outputs by name, one call."""
        request = self._take()
        try:
            request.infer(inputs)
            return self._read(request)
        finally:
            self._give(request)

    def infer_requests(self, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Several calls, up to ``requests`` in flight at once (async infer requests); results in order."""
        out: list[dict[str, np.ndarray]] = [{} for _ in feeds]
        pending: list[tuple[int, Any]] = []
        try:
            for i, feed in enumerate(feeds):
                if len(pending) >= self.requests:
                    j, request = pending.pop(0)
                    request.wait()
                    out[j] = self._read(request)
                    self._give(request)
                request = self._take()
                pending.append((i, request))
                request.start_async(feed)
            while pending:
                j, request = pending.pop(0)
                request.wait()
                out[j] = self._read(request)
                self._give(request)
        finally:
            for _, request in pending:  # an error part-way: let the others finish before reuse
                request.wait()
                self._give(request)
        return out

    def close(self) -> None:
        with self._lock:
            self._idle.clear()
        self.compiled = None
