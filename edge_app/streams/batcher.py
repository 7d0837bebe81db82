"""One inference thread for every stream: the newest frame of each stream gathered into a batch, each
model run once per batch (``predict_batch``: one backend call with batch N where the artifact's batch
axis allows it, one call per frame where it does not), then each stream handed its own results.

Gathering is nvstreammux's: take what is ready (round-robin, starting one stream further each time, so
that with more streams than ``max_batch`` none starves), then wait at most ``batch_timeout_s`` for the
other live streams' frames (``batched-push-timeout``). A camera that is away is not waited for, and a slow
one costs the others at most that timeout: it never stalls them.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.types import Frame
from .telemetry import Telemetry
from .stream import RateLimited, Stream

log = logging.getLogger("edge_app.batcher")


def predict_batch(model: Any, images: Sequence[np.ndarray]) -> list[Any]:
    """The model's results for each image (H, W, 3); models without ``predict_batch`` run frame by frame."""
    batched = getattr(model, "predict_batch", None)
    if batched is None or len(images) == 1:
        return [model.predict(image) for image in images]
    return list(batched(images))


class Batcher:
    def __init__(self, models: Sequence[Any], telemetry: Telemetry, *, max_batch: int = 8,
                 batch_timeout_s: float = 0.01, workers: int = 1) -> None:
        """telemetry: the process-wide one (batch sizes, the whole batch's inference time); workers: threads
        that each gather and run a batch. With two, one batch's Python work (preprocessing, decoding,
        tracking) overlaps the other's inference, as two processes would, with one copy of each model. A
        stream is in one batch at a time, so its frames are processed in order by its own tracker."""
        self.models, self.telemetry = list(models), telemetry
        self.max_batch, self.batch_timeout = max(1, int(max_batch)), max(0.0, float(batch_timeout_s))
        self.workers = max(1, int(workers))
        self._streams: tuple[Stream, ...] = ()
        self._lock = threading.Lock()
        self._gathering = threading.Lock()  # one worker assembles a batch at a time
        self._busy: set[str] = set()        # streams whose frame is being run by a worker
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._beats: dict[str, float] = {}
        self._next = 0
        self._last = -1
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        # per model: frames run, frames it failed on, and the last seconds per frame (a promoted model's
        # health is judged from these: rollout.manager)
        self.model_frames: collections.Counter[str] = collections.Counter()
        self.model_errors: collections.Counter[str] = collections.Counter()
        self.model_seconds: dict[str, collections.deque[float]] = {}
        self._warn = RateLimited(log)

    # -- streams -----------------------------------------------------------------------------------
    @property
    def streams(self) -> tuple[Stream, ...]:
        return self._streams

    def add(self, stream: Stream) -> None:
        with self._lock:
            if any(s.name == stream.name for s in self._streams):
                raise ValueError(f"a stream named {stream.name!r} exists already")
            stream.source.slot.listener = self._wake.set
            self._streams = self._streams + (stream,)  # replaced, never mutated: the loop reads it unlocked
        self._wake.set()

    def remove(self, name: str) -> Stream | None:
        """Take the stream out of the batches (its current batch, if any, still completes)."""
        with self._lock:
            found = next((s for s in self._streams if s.name == name), None)
            if found is not None:
                self._streams = tuple(s for s in self._streams if s is not found)
                found.source.slot.listener = None
        return found

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.workers):
            name = "inference" if self.workers == 1 else f"inference-{i}"
            self._beats[name] = time.monotonic()
            t = threading.Thread(target=self._loop, args=(name,), name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def thread_alive(self) -> bool:
        """Every worker runs (a dead one is a fault the watchdog must see)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    @property
    def beat(self) -> float:
        """The oldest worker heartbeat: one worker stuck in a call is a stuck pipeline."""
        return min(self._beats.values()) if self._beats else time.monotonic()

    # -- the loop ----------------------------------------------------------------------------------
    def _take(self, streams: tuple[Stream, ...], have: set[str], room: int) -> list[tuple[Stream, Frame]]:
        """The frames ready now, round-robin from ``self._next``; at most ``room``, none of ``have``."""
        n = len(streams)
        taken: list[tuple[Stream, Frame]] = []
        for k in range(n):
            if len(taken) >= room:
                break
            i = (self._next + k) % n
            s = streams[i]
            if s.name in have or s.name in self._busy:
                continue
            frame = s.source.read(timeout=0)
            if frame is not None:
                taken.append((s, frame))
                self._last = i
        return taken

    def gather(self) -> list[tuple[Stream, Frame]]:
        """One batch: (stream, frame) pairs, at most one frame per stream and ``max_batch`` in all;
        empty when nothing arrived within a quarter of a second."""
        self._wake.clear()
        streams = self._streams
        batch = self._take(streams, set(), self.max_batch)
        if not batch:
            self._wake.wait(0.25)
            return []
        live = sum(1 for s in streams if s.source.stats.state == "playing")
        want = min(self.max_batch, max(live, 1))
        deadline = time.monotonic() + self.batch_timeout
        while len(batch) < want and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wake.clear()
            more = self._take(streams, {s.name for s, _ in batch}, self.max_batch - len(batch))
            if more:
                batch += more
            else:
                self._wake.wait(left)
        if streams:  # round-robin: the next gathering starts after the last stream served
            self._next = (self._last + 1) % len(streams)
        return batch

    def _loop(self, name: str) -> None:
        while not self._stop.is_set():
            self._beats[name] = time.monotonic()
            with self._gathering:
                batch = self.gather()
                self._busy.update(s.name for s, _ in batch)
            if not batch:
                continue
            try:
                self.run(batch)
            finally:
                self._busy.difference_update(s.name for s, _ in batch)
                if self.workers > 1:
                    self._wake.set()  # those streams may have a frame waiting for the other worker

    def run(self, batch: list[tuple[Stream, Frame]]) -> None:
        """Every model on the batch's frames, then each stream's own processing of its frame."""
        start = time.monotonic()
        for s, f in batch:
            s.telemetry.record("capture_wait", max(0.0, start - f.captured))
        per_frame: list[list[Any]] = [[] for _ in batch]
        t0 = time.perf_counter()
        for model in list(self.models):  # one list per batch: a model swapped meanwhile takes the next batch
            # the frames of the streams this model runs on (a stream may name its models)
            idx = [i for i, (s, _) in enumerate(batch) if s.runs is None or model.name in s.runs]
            if not idx:
                continue
            part = [batch[i] for i in idx]
            tm = time.perf_counter()
            try:
                results: list[Any] = predict_batch(model, [f.image for _, f in part])
            except Exception:
                results = self._one_by_one(model, part)  # find the frame at fault; the others keep their results
            self.model_frames[model.name] += len(part)
            self.model_errors[model.name] += sum(r is None for r in results)
            seconds = self.model_seconds.setdefault(model.name, collections.deque(maxlen=200))
            seconds.append((time.perf_counter() - tm) / len(part))
            for i, r in zip(idx, results):
                if r is not None:
                    per_frame[i].append(r)
        self.telemetry.record("batch_infer", time.perf_counter() - t0)
        self.telemetry.count("batches")
        self.batch_sizes[len(batch)] += 1
        for (s, f), results in zip(batch, per_frame):
            s.process(f, results)

    def swap(self, name: str, new: Any) -> Any:
        """Put ``new`` in the place of the model called ``name`` (between two batches: ``run`` takes its
        list once per batch); returns the model it replaced. Its per-model timings start again."""
        for i, m in enumerate(self.models):
            if m.name == name:
                self.models[i] = new
                self.model_seconds.pop(name, None)
                return m
        raise KeyError(name)

    def _one_by_one(self, model: Any, batch: list[tuple[Stream, Frame]]) -> list[Any]:
        out: list[Any] = []
        for s, f in batch:
            try:
                out.append(model.predict(f.image))
            except Exception as exc:  # one bad frame or model hiccup must not stop the stream
                s.telemetry.count("frame_errors")
                self._warn("model %s failed on frame %d of stream %s: %s", model.name, f.index, s.name, exc)
                out.append(None)
        return out
