"""The running streams: each built from its ``StreamConfig`` (source, tracker state, counts, rolling P/R,
outputs), added to and removed from the batcher while the process runs. Removing a stream stops its
source (its GStreamer pipeline set to NULL and released) and its output thread, closes its RTSP mount,
recording and MJPEG viewers, and forgets its state: fds and threads go back where they were.
"""
from __future__ import annotations

import dataclasses
import logging
from functools import partial
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..analytics.counting import Analytics
from ..config.schema import AnalyticsConfig, AppConfig, StreamConfig
from ..health import Health, assess
from ..health.memory import release_memory
from ..review.labels import LabelsFile
from ..logs import log_event
from ..review.rolling import RollingMonitor
from ..sources import open_source
from .telemetry import Telemetry
from .batcher import Batcher
from .stream import PipelineHooks, Stream

log = logging.getLogger("edge_app.streams")


@dataclass
class Running:
    """A stream and what was built for it."""

    config: StreamConfig
    stream: Stream
    labels_file: LabelsFile | None


class EventSink(Protocol):
    """Where a stream's analytics events go (``events.device.DeviceEvents``)."""

    def track_events(self, events: list[dict[str, Any]], stream: str = ...) -> None: ...


class StreamSet:
    """The composition root's streams. ``outputs(cfg) -> list`` makes a stream's outputs (its MJPEG sink,
    RTSP mount, recorder); ``events``: the event sink, handed to each stream directly
    (``track_events(events, stream=NAME)``: it queues them, off the inference thread); ``sampler`` and
    ``sampled`` (a stream name): frames of that stream are sampled for labelling."""

    def __init__(self, cfg: AppConfig, models: Sequence[Any], batcher: Batcher,
                 outputs: Callable[[StreamConfig], list[Any]],
                 events: EventSink | None = None,
                 sampler: Any = None, sampled: str = "",
                 shadow: Callable[[Any, int, list[Any], Any, str | None], None] | None = None) -> None:
        """shadow(image, index, results, labels, sample id): every processed frame of the sampled stream,
        for the candidate models (``rollout.manager``)."""
        self.cfg, self.models, self.batcher = cfg, list(models), batcher
        self.shadow = shadow
        self._outputs, self.events = outputs, events
        self.sampler, self.sampled = sampler, sampled
        self._running: dict[str, Running] = {}
        self._lock = threading.RLock()  # the HTTP API, SIGHUP and the main loop change the set

    # -- the set -----------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._running)

    def get(self, name: str) -> Running | None:
        return self._running.get(name)

    def all(self) -> list[Running]:
        return list(self._running.values())

    def configs(self) -> list[StreamConfig]:
        return [r.config for r in self.all()]

    def add(self, sc: StreamConfig, start: bool = True) -> Running:
        """Build and (unless ``start`` is False: the app starts them together) start a stream."""
        with self._lock:
            if sc.name in self._running:
                raise ValueError(f"a stream named {sc.name!r} exists already")
            running = self._build(sc)
            self._running[sc.name] = running
            self.batcher.add(running.stream)
            if start:
                running.stream.start()
        log_event(log, logging.INFO, "stream_added", stream=sc.name, uri=sc.uri,
                  outputs=[getattr(o, "url", o.name) for o in running.stream.outputs])
        return running

    def start(self) -> None:
        for r in self.all():
            r.stream.start()

    def remove(self, name: str, timeout: float = 2.0) -> bool:
        with self._lock:
            running = self._running.pop(name, None)
            if running is None:
                return False
            self.batcher.remove(name)
            running.stream.stop(timeout)
            running.stream.close()
        del running
        release_memory()  # its frames and buffers, back to the OS (health/memory.py)
        log_event(log, logging.INFO, "stream_removed", stream=name)
        return True

    def set_geometry(self, name: str, analytics: AnalyticsConfig) -> None:
        """New lines and zones for a running stream, counted from its next frame (the stream, its tracks
        and the counts of lines and zones left as they were go on)."""
        with self._lock:
            r = self._running[name]
            if r.stream.analytics is not None:
                r.stream.analytics.set_geometry(analytics, r.config.width, r.config.height)
            r.config = dataclasses.replace(r.config, analytics=analytics)

    def reconcile(self, wanted: Sequence[StreamConfig]) -> dict[str, list[str]]:
        """SIGHUP: make the running set what ``wanted`` says: streams not there any more removed, new
        ones added, changed ones rebuilt; unchanged ones keep running untouched (their counts and ids)."""
        with self._lock:
            want = {s.name: s for s in wanted}
            removed = [n for n in self._running if n not in want]
            changed = [n for n, s in want.items() if n in self._running and self._running[n].config != s]
            added = [n for n in want if n not in self._running]
            for name in removed + changed:
                self.remove(name)
            for name in changed + added:
                self.add(want[name])
        return {"added": added, "removed": removed, "changed": changed}

    def stop(self, timeout: float = 1.5) -> None:
        """Every stream's source and output thread (the outputs stay open: ``close``)."""
        for r in self.all():
            r.stream.stop(timeout / max(1, len(self._running)))

    def close(self) -> None:
        for r in self.all():
            r.stream.close()

    def reload(self) -> None:
        for r in self.all():
            if r.labels_file is not None:
                r.labels_file.reload()

    # -- building ----------------------------------------------------------------------------------
    def _build(self, sc: StreamConfig) -> Running:
        cfg = self.cfg
        runs = [m for m in self.models if not sc.models or m.name in sc.models]
        sampler = self.sampler if sc.name == self.sampled else None
        # the sampled stream's window is the sampler's: labels from the inbox are scored into it
        rolling = sampler.rolling if sampler is not None else new_rolling(cfg)
        for m in runs:
            rolling.add_model(m.name, m.task, tuple(m.classes))
        names = {m.name for m in runs}
        trackers = {name: m.tracker for name, m in cfg.models.items()
                    if name in names and m.enabled and m.kind == "detector" and m.tracker.enabled}
        groups = {m.name: m.decoder.groups for m in runs if m.task == "detection"
                  and getattr(getattr(m, "decoder", None), "groups", None) is not None}
        class_groups = {g: tuple(c) for name, m in cfg.models.items() if name in names for g, c in m.class_groups.items()}
        analytics = Analytics(sc.analytics, trackers, sc.width, sc.height, cfg.events.track_update_s, groups,
                              class_groups)
        labels_file = LabelsFile.open(cfg.resolve(sc.labels_file)) if sc.labels_file else None
        hooks = PipelineHooks.for_labels(labels_file, sampler)
        if sc.name == self.sampled and self.shadow is not None:
            hooks.on_processed = _with_shadow(hooks.on_processed, hooks.labels_for, self.shadow)
        hooks.alphas = {name: m.alpha for name, m in cfg.models.items()}
        if self.events is not None:
            analytics.record_events = True
            hooks.on_events = partial(self.events.track_events, stream=sc.name)
        source = open_source(sc, cfg.base_dir)
        outputs = self._outputs(sc)
        stream = Stream(sc.name, source, outputs, rolling, Telemetry(), hooks, analytics=analytics, models=runs,
                        fps=sc.fps, runs=frozenset(names))
        return Running(sc, stream, labels_file)

    # -- status ------------------------------------------------------------------------------------
    def health(self, now: float, inference: tuple[bool, float], wedged_after: float) -> Health:
        """The worst of the streams: ``failing`` (a stuck or dead thread: the watchdog stops) before
        ``degraded`` (a camera away: named, the others go on) before ``ok``. No streams: ok."""
        failing: list[str] = []
        degraded: list[str] = []
        several = len(self._running) > 1
        for r in self.all():
            s = r.stream
            threads = {**s.threads(), "inference": inference}
            h = assess(now, threads, s.source.stats, s.last_output_at, s.started, wedged_after=wedged_after,
                       output_timeout=max(5.0, 3 / r.config.fps))
            reasons = [f"{r.config.name}: {x}" if several else x for x in h.reasons]
            (failing if h.state == "failing" else degraded).extend(reasons)
        if failing:
            return Health("failing", tuple(failing))
        return Health("degraded", tuple(degraded)) if degraded else Health("ok", ())

    def stream_status(self, name: str) -> dict[str, Any] | None:
        r = self.get(name)
        return None if r is None else describe(r, time.monotonic())


def _with_shadow(sample: Any, labels_for: Any, shadow: Any) -> Callable[..., None]:
    """The sampler's hook, then the candidates' (told the frame's labels and whether it was sampled)."""
    def on_processed(frame: Any, results: list[Any], tracks: dict[str, Any] | None = None) -> None:
        sid = sample(frame, results, tracks) if sample is not None else None
        labels = frame.labels if frame.labels is not None else labels_for(frame) if labels_for is not None else None
        shadow(frame.image, frame.index, results, labels, sid)
    return on_processed


def new_rolling(cfg: AppConfig) -> RollingMonitor:
    """A rolling P/R window with the config's [rolling] settings."""
    r = cfg.rolling
    return RollingMonitor(iou=r.iou, window_frames=r.window_frames, window_seconds=r.window_seconds,
                          precision_floor=r.precision_floor, recall_floor=r.recall_floor, min_labelled=r.min_labelled)


def describe(r: Running, now: float) -> dict[str, Any]:
    """A stream's part of /status: ``fps``, ``frames`` (through the outputs), ``source`` (its state), the
    source's counters, latency, counts, rolling P/R, current detections and tracks."""
    s = r.stream
    st = s.source.stats
    t = s.telemetry.snapshot()
    detections, tracks = [], []
    for res in s.latest_results:
        if res.detections is not None:
            for box, score, cls in zip(res.detections.boxes.tolist(), res.detections.scores.tolist(),
                                       res.detections.classes.tolist()):
                detections.append({"model": res.name, "class": res.classes[cls], "score": score, "box": box})
        tr = s.latest_tracks.get(res.name)
        if tr is not None:
            for box, tid, score, cls in zip(tr.boxes.tolist(), tr.ids.tolist(), tr.scores.tolist(),
                                            tr.classes.tolist()):
                tracks.append({"model": res.name, "id": tid, "class": res.classes[cls], "score": score, "box": box})
    rolling = s.rolling.snapshot(max_age=0.5)
    return {"fps": t["fps"], "frames": t["counters"].get("frames_out", 0), "source": st.state,
            "uri": s.source.uri, "captured": st.frames, "dropped": st.dropped, "reconnects": st.reconnects,
            "errors": st.errors, "bad_frames": st.bad_frames, "loops": st.loops, "last_error": st.last_error,
            "lost_for_s": round(now - st.lost_since, 1) if st.lost_since else None,
            "retry_in_s": round(max(0.0, st.retry_at - now), 1) if st.retry_at and st.state == "reconnecting" else None,
            "size": [r.config.width, r.config.height],
            "models": sorted(s.runs) if s.runs is not None else [m.name for m in s.models],
            "latency_ms": t["latency_ms"], "counters": t["counters"],
            "outputs": [getattr(o, "url", o.name) for o in s.outputs], "rolling": rolling,
            "analytics": s.analytics.snapshot() if s.analytics is not None and s.analytics.enabled else None,
            "warnings": s.rolling.drift_warnings(rolling), "detections": detections[:50], "tracks": tracks[:100],
            "config": {k: v for k, v in dataclasses.asdict(r.config).items() if k != "analytics"}}
