"""Greedy NMS through ONNX Runtime's NonMaxSuppression kernel: the same kept boxes as core.nms, faster on
the few hundred to few thousand candidates of a detector's frame.

core/nms.py stays numpy-only and exact; this module lends it a compiled loop (``install``, done by the first
ONNX Runtime session opened, so the runtime, calibration and evaluation all use it alike). The answer
does not change, only the time (tests/core/test_nms.py runs both against torchvision; the benchmark,
tests/benchmarks/bench_nms.py, times both).

Why the answer is the same as torchvision's (and core.nms's):
* ONNX Runtime computes IoU with the same float32 operations in the same order (intersection w * h,
  (area_kept + area_candidate) - intersection, one division) and suppresses on IoU > threshold. Its box
  format is [y1, x1, y2, x2]; ours is handed over as it is: IoU is symmetric in x and y, and the products
  it forms are the same products (float multiplication commutes).
* It compares with a float32 threshold, torchvision with the double: where float32(t) rounds above t,
  the float just below it gives the same decisions (no float32 lies between t and float32(t)).
* It orders candidates by score only (ties in any order): it is given each box's rank (N - rank, exact in
  float32 below 2**24) as its score, so the order is core.nms's: score, then index.
* Classes: one score row per group present, the rank where the box is of that group, 0 elsewhere, and a
  score threshold of 0 (strictly above is kept).
* It orders each box's corners itself; torchvision does not. Boxes with x2 < x1 or y2 < y1 (or NaN) are
  therefore left to the numpy path (``core.nms`` checks before calling the kernel).
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from ..core import nms as core_nms

log = logging.getLogger(__name__)


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(number: int, value: bytes | str | int) -> bytes:
    """One protobuf field: an int as a varint, bytes or text length-delimited."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, shape: tuple[int | str, ...]) -> bytes:
    # ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: {elem_type=1, shape=2: {dim=1: {value=1 | param=2}}}}}
    dims = b"".join(_field(1, _field(1, d) if isinstance(d, int) else _field(2, d)) for d in shape)
    return _field(1, name) + _field(2, _field(1, _field(1, elem_type) + _field(2, dims)))


def nms_model_bytes() -> bytes:
    """A one-node ONNX model (opset 11): NonMaxSuppression(boxes (1, N, 4) float, scores (1, G, N) float,
    max_per_class (1,) int64, iou (1,) float, score_threshold (1,) float) -> selected (K, 3) int64.
    Written field by field (ONNX's protobuf numbering) so the runtime needs no onnx package."""
    float_, int64 = 1, 7
    inputs = (("boxes", float_, (1, "n", 4)), ("scores", float_, (1, "g", "n")), ("max_per_class", int64, (1,)),
              ("iou", float_, (1,)), ("score_min", float_, (1,)))
    node = b"".join(_field(1, n) for n, _, _ in inputs) + _field(2, "selected") + _field(4, "NonMaxSuppression")
    graph = (_field(1, node) + _field(2, "edge_app_nms")
             + b"".join(_field(11, _value_info(*i)) for i in inputs)
             + _field(12, _value_info("selected", int64, ("k", 3))))
    return _field(1, 7) + _field(2, "edge_app") + _field(7, graph) + _field(8, _field(1, "") + _field(2, 11))


class OrtNms:
    """The kernel core.nms calls: (ranked boxes (N, 4) float32 xyxy, groups (N,) int64, threshold) ->
    (N,) bool keep mask over the ranks. One session, one thread (the kernel is one loop); thread-safe."""

    def __init__(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(nms_model_bytes(), sess_options=opts, providers=["CPUExecutionProvider"])
        self._zero = np.zeros(1, np.float32)

    def __call__(self, ranked: np.ndarray, groups: np.ndarray, t: float) -> np.ndarray:
        n = len(ranked)
        present, row = np.unique(groups, return_inverse=True)
        scores = np.zeros((len(present), n), np.float32)
        scores[row.reshape(-1), np.arange(n)] = np.arange(n, 0, -1, dtype=np.float32)
        t32 = np.float32(t)
        if float(t32) > t:  # see the module's docstring: the same decisions as "IoU > t" in double
            t32 = np.nextafter(t32, np.float32(0))
        selected = self.session.run(None, {
            "boxes": ranked.reshape(1, n, 4), "scores": scores.reshape(1, len(present), n),
            "max_per_class": np.array([n], np.int64), "iou": np.array([t32], np.float32), "score_min": self._zero,
        })[0]
        keep = np.zeros(n, bool)
        keep[selected[:, 2]] = True
        return keep


_lock = threading.Lock()


_failed = False


def install() -> None:
    """Lend core.nms the ONNX Runtime kernel (once per process; idempotent). A build of ONNX Runtime
    that cannot run it leaves core.nms on numpy (same answers, slower) with one warning."""
    global _failed
    with _lock:
        if core_nms.kernel() is not None or _failed:
            return
        try:
            core_nms.use_kernel(OrtNms())
        except Exception as exc:  # ORT's own exception types; the numpy path needs nothing from it
            _failed = True
            log.warning("NMS stays on numpy: ONNX Runtime could not run its NonMaxSuppression kernel: %s",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
