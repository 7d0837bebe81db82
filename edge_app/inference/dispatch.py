"""How several images of one model call reach its backend: the tiles of one frame, or the frames of several
streams. Three ways, and ``runtime.batching = "auto"`` measures them per model at start:

- ``batch``: one backend call with a batch of N (a dynamic batch axis; else chunks the axis takes);
- ``frames``: N calls one after the other, each with all of the model's threads;
- ``requests``: N calls, several in flight at once (OpenVINO's async infer requests on CPU streams,
  ONNX Runtime's run in threads), each with ``threads / requests`` threads.

Which is fastest depends on the CPU, the backend and the model (small convolutions leave cores idle
within one call; big ones do not), hence measured, not assumed.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

MODES = ("batch", "frames", "requests")
# A mode other than one call per frame must be this much faster per image to be chosen: a smaller lead is
# noise on a shared machine, and batches cost latency (the first frame waits for the last).
MIN_GAIN = 1.05


def run(backend: Any, input_name: str, x: np.ndarray, mode: str, max_batch: int | None) -> dict[str, np.ndarray]:
    """(B, 3, h, w) through the backend the way ``mode`` says; outputs concatenated along the batch axis."""
    if len(x) == 1:
        return backend.infer({input_name: x})
    if mode == "requests" and hasattr(backend, "infer_requests"):
        parts = backend.infer_requests([{input_name: x[i:i + 1]} for i in range(len(x))])
    else:
        step = 1 if mode == "frames" or max_batch == 1 else len(x) if max_batch is None else max_batch
        if step >= len(x):
            return backend.infer({input_name: x})
        parts = [backend.infer({input_name: x[at:at + step]}) for at in range(0, len(x), step)]
    return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


def candidates(max_batch: int | None, threads: int) -> list[str]:
    """The modes worth measuring: a batch only where the batch axis takes more than one image, requests
    only where there are threads to split."""
    out = ["frames"]
    if max_batch != 1:
        out.append("batch")
    if threads >= 2:
        out.append("requests")
    return out


def measure(work: dict[str, Callable[[], Any]], rounds: int = 3) -> dict[str, float]:
    """Median seconds of each mode's work (one call each), the modes taking turns (load from elsewhere
    falls on all alike); one warm-up call each first (buffers for the batch size are allocated)."""
    for fn in work.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in work}
    for _ in range(rounds):
        for mode, fn in work.items():
            t0 = time.perf_counter()
            fn()
            times[mode].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def choose(seconds: dict[str, float]) -> str:
    """``frames`` unless another mode is at least MIN_GAIN faster."""
    best = min(seconds, key=lambda k: seconds[k])
    return best if "frames" not in seconds or seconds[best] * MIN_GAIN < seconds["frames"] else "frames"
