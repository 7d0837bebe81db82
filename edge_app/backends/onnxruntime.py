"""ONNX Runtime backend: CPU everywhere; CUDA / TensorRT execution providers when onnxruntime-gpu has them.

``requests``: how many calls may run at once (``infer_requests``, or several threads calling ``infer``):
each gets ``threads / requests`` intra-op threads, so that calls in flight share the cores instead of
fighting over them.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .base import BackendError
from .ort_nms import install as install_nms_kernel


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, *, threads: int = 2, providers: tuple[str, ...] | None = None,
                 spin: bool = False, requests: int = 1, precision: str | None = None) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        wanted = providers or ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
        chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        if precision == "bf16":
            raise BackendError(f"{path}: precision bf16 runs on backend openvino only (ONNX Runtime's CPU provider "
                               "computes float32)")
        self.requests = max(1, int(requests))
        opts.intra_op_num_threads = max(1, threads // self.requests)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # ORT's notes on constants it folds away are for its developers, not ours
        # By default idle intra-op threads do not spin: with several models per frame (each session has
        # its own pool) a spinning pool takes a core from the next model's run, and from the decoder and
        # overlay threads. Measured on 2 cores: detector + segmenter back to back 58-60 ms spinning,
        # 28 ms not. A lone model timed in isolation is ~15 % faster spinning (spin=True).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
        except Exception as exc:  # ORT's own exception types: corrupt or unsupported model
            raise BackendError(f"{path}: ONNX Runtime cannot load it: {str(exc).splitlines()[0]}") from None
        self.path = Path(path)
        self.providers = tuple(self.session.get_providers())
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        # The batch axis as exported: a name (or None) = dynamic, any batch; a number = exactly that.
        first = self.session.get_inputs()[0].shape
        dim = first[0] if first else 1
        self.max_batch: int | None = dim if isinstance(dim, int) and dim > 0 else None
        self._pool: ThreadPoolExecutor | None = None
        # The first session opened lends core.nms ONNX Runtime's NMS loop (same boxes kept, faster on a
        # detector's few hundred candidates: ort_nms.py).
        install_nms_kernel()

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(list(self.output_names), inputs)
        return dict(zip(self.output_names, outputs))

    def infer_requests(self, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Several calls, up to ``requests`` at once (ONNX Runtime releases the GIL in run); in order."""
        if self.requests == 1 or len(feeds) < 2:
            return [self.infer(f) for f in feeds]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.requests, thread_name_prefix="ort-request")
        return list(self._pool.map(self.infer, feeds))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.session = None  # type: ignore[assignment]
