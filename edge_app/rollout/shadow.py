"""The candidate's own thread: it never costs the live stream a frame.

The live pipeline only *offers* frames (``offer``: a reference to the frame and the live model's result,
no copy, no wait). The candidate runs on every frame sampled for labelling and on at most 1 in
``every`` of the others, one at a time, on its own thread with a single inference thread, and within a CPU budget:
after a call that took ``c`` seconds of CPU it runs again only ``c * (1 / share - 1)`` seconds later, so
over time it uses at most ``share`` of one core (measured with the thread's own CPU clock). A frame offered
while it is busy or resting is skipped and counted, never queued behind: the newest sampled frame waits in
a one-slot mailbox, an unsampled one is dropped.

Not a lower priority (nice 19) for that thread: tried, it cost the live stream 37 % of its frames while
using 4 % of a core. The thread holds the GIL in its Python parts (preprocessing, decoding); descheduled by
the kernel while holding it, it made the live threads wait for it (priority inversion). The budget alone
bounds what it takes.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("edge_app.rollout")


@dataclass
class Job:
    """A frame for the candidate: image (H, W, 3) BGR, the live model's result on it, its labels if the
    frame carries them (synthetic / replay / labels file), the sample id when it was saved for labelling."""
    image: np.ndarray
    index: int
    current: Any
    labels: Any = None
    sample_id: str | None = None


class ShadowRunner:
    def __init__(self, model: Any, share: float, every: int, on_result: Callable[[Job, Any, float], None],
                 name: str = "shadow") -> None:
        """model: the candidate (``predict(image) -> ModelResult``); on_result(job, result, seconds) is called
        on this thread after each run."""
        self.model, self.share, self.every, self.on_result = model, float(share), int(every), on_result
        self.runs = self.errors = self.offered = 0
        self.skipped = {"busy": 0, "budget": 0, "every": 0}
        self.cpu_s = 0.0
        self.started = time.monotonic()
        self._latency: list[float] = []
        self._seen = 0
        self._next_at = 0.0          # monotonic time before which the budget says rest
        self._job: Job | None = None  # the one-slot mailbox
        self._busy = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- the live side: never waits ----------------------------------------------------------------
    def offer(self, job: Job) -> bool:
        """Hand a frame over if the policy and the budget allow; returns whether it was taken."""
        self.offered += 1
        sampled = job.sample_id is not None
        if not sampled:
            self._seen += 1
            if self.every <= 0 or self._seen % self.every:
                self.skipped["every"] += 1
                return False
            if time.monotonic() < self._next_at:
                self.skipped["budget"] += 1
                return False
        with self._cond:
            if self._busy or self._job is not None:
                if not sampled or (self._job is not None and self._job.sample_id is not None):
                    self.skipped["busy"] += 1
                    return False
                if self._job is not None:  # a sampled frame takes the place of an unsampled one
                    self.skipped["busy"] += 1
            self._job = job
            self._cond.notify()
        return True

    # -- the candidate's thread --------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while self._job is None and not self._stop.is_set():
                    self._cond.wait(0.5)
                job, self._job = self._job, None
                self._busy = job is not None
            if job is None:
                break
            rest = self._next_at - time.monotonic()
            if rest > 0 and self._stop.wait(rest):
                break
            c0, w0 = time.thread_time(), time.perf_counter()
            try:
                result = self.model.predict(job.image)
            except Exception as exc:  # a candidate that fails is counted; the live stream never sees it
                self.errors += 1
                if self.errors <= 5 or self.errors % 100 == 0:
                    log.warning("shadow: candidate failed on frame %d: %s (%d errors)", job.index, exc, self.errors)
                result = None
            wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
            self.cpu_s += cpu
            self._next_at = time.monotonic() + cpu * (1.0 / self.share - 1.0)
            if result is not None:
                self.runs += 1
                self._latency.append(wall)
                if len(self._latency) > 500:
                    del self._latency[:250]
                try:
                    self.on_result(job, result, wall)
                except Exception as exc:
                    log.warning("shadow: scoring frame %d failed: %s", job.index, exc)
            with self._cond:
                self._busy = False

    def describe(self) -> dict[str, Any]:
        elapsed = max(1e-9, time.monotonic() - self.started)
        lat = np.asarray(self._latency[-200:])
        return {"runs": self.runs, "errors": self.errors, "offered": self.offered, "skipped": dict(self.skipped),
                "cpu_s": round(self.cpu_s, 3), "cpu_share": round(self.cpu_s / elapsed, 4), "budget_share": self.share,
                "latency_ms": round(float(np.median(lat)) * 1000, 2) if lat.size else None}

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
