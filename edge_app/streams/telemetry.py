"""Counters and per-stage latency percentiles of the live pipeline (thread-safe, bounded memory)."""
from __future__ import annotations

import collections
import threading
import time
from typing import Any

import numpy as np


class Telemetry:
    """Latency samples per stage (last ``keep`` values), fps over the last seconds, counters."""

    def __init__(self, keep: int = 600, fps_window_s: float = 5.0) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self._stages: dict[str, collections.deque[float]] = {}
        self._done: collections.deque[float] = collections.deque(maxlen=4096)
        self._fps_window = fps_window_s
        self.counters: collections.Counter[str] = collections.Counter()
        self.started = time.monotonic()
        self._latency_cache: tuple[float, dict[str, dict[str, float]]] | None = None

    def record(self, stage: str, seconds: float) -> None:
        with self._lock:
            q = self._stages.get(stage)
            if q is None:
                q = self._stages[stage] = collections.deque(maxlen=self._keep)
            q.append(seconds)

    def frame_done(self, now: float | None = None) -> None:
        with self._lock:
            self._done.append(time.monotonic() if now is None else now)
            self.counters["frames_out"] += 1

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def fps(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._done if t >= now - self._fps_window]
        if len(recent) < 2:
            return 0.0
        span = max(recent[-1] - recent[0], 1e-6)
        return (len(recent) - 1) / span

    def latency(self, max_age: float = 0.0) -> dict[str, dict[str, float]]:
        """{stage: {p50, p90, p99, mean} in milliseconds}; ``max_age`` allows a recent cached copy
        (the HUD asks on every frame, and percentiles of every stage are not free)."""
        now = time.monotonic()
        cached = self._latency_cache
        if cached is not None and now - cached[0] <= max_age:
            return cached[1]
        with self._lock:
            stages = {k: np.array(v) for k, v in self._stages.items() if v}
        out = {}
        for k, v in stages.items():
            p50, p90, p99 = np.percentile(v, [50, 90, 99]) * 1e3
            out[k] = {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3),
                      "mean": round(float(v.mean() * 1e3), 3)}
        self._latency_cache = (now, out)
        return out

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counters = dict(self.counters)
        return {"fps": round(self.fps(), 2), "latency_ms": self.latency(), "counters": counters,
                "uptime_s": round(time.monotonic() - self.started, 1)}
