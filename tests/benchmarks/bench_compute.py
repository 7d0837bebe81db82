"""Compute efficiency: SSDLite320 FP32 latency in ONNX Runtime against its compute floor.

The floor is 1.17 GFLOP per frame (multiply-adds counted as 2 FLOP) divided by this machine's measured
peak: the best float32 GEMM throughput numpy reaches with the same 2 threads (an attainable peak, not the
datasheet's). Run: `python tests/benchmarks/bench_compute.py`."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SSD_GFLOP = 1.17


def peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), np.float32)
    a @ b
    best = min(_t(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _t(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    from calibration.evaluate import measure_latencies, open_for_eval
    from edge_app.datasets.synthetic import make_sample

    path = ROOT / "edge_app" / "demo" / "detector.onnx"
    image = make_sample(np.random.default_rng(0), 640, 480).image
    # The floor comparison takes the model at its best alone (idle threads spinning); the runtime's
    # setting (no spinning, which several models per frame need) is printed beside it.
    both = measure_latencies({"spin": open_for_eval(path, threads=2, spin=True),
                              "runtime": open_for_eval(path, threads=2, spin=False)}, image, rounds=10, runs=10)
    lat, runtime = both["spin"], both["runtime"]
    peak = peak_gflops()
    floor_ms = SSD_GFLOP / peak * 1e3
    eff = floor_ms / lat["median_ms"]
    print(f"peak (numpy sgemm, 2 threads): {peak:.1f} GFLOP/s; SSDLite320 floor {floor_ms:.2f} ms; "
          f"measured {lat['median_ms']:.2f} ms (p90 {lat['p90_ms']:.2f}); with the runtime's non-spinning "
          f"threads {runtime['median_ms']:.2f} ms")
    print(f"SUMMARY compute: SSDLite FP32 reaches {eff * 100:.1f}% of the compute floor "
          f"({SSD_GFLOP} GFLOP at {peak:.0f} GFLOP/s)")
    print(json.dumps({"benchmark": "compute", "peak_gflops": peak, "gflop_per_frame": SSD_GFLOP,
                      "floor_ms": floor_ms, **lat, "efficiency": eff, "runtime_median_ms": runtime["median_ms"],
                      "cpu_count": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
