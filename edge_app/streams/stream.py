"""One camera's half of the live loop: its source, its tracker state and counts, its rolling P/R, its
overlay and its outputs. The models are not here: the batcher (``streams.batcher``) runs them for every
stream and hands each stream its results (``process``, on the batcher's thread). The overlay and the
outputs run on the stream's own thread, fed through a one-slot mailbox, so a slow encoder of one stream
skips its own stale frames and never holds up inference or the other streams.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.types import Frame, Tracks
from ..logs import log_event
from .overlay import draw_detections, draw_geometry, draw_hud, draw_mask, draw_plain_boxes, draw_tracks
from ..review.rolling import RollingMonitor, for_log
from ..sources import FrameSource, LatestSlot
from .telemetry import Telemetry
from ..analytics.counting import Analytics
from ..inference.base import Model
from ..outputs.base import Output

log = logging.getLogger("edge_app.streams")


@dataclass
class Processed:
    frame: Frame
    results: list[Any]
    done_at: float
    tracks: dict[str, Tracks] = field(default_factory=dict)   # detector -> its confirmed tracks


@dataclass
class PipelineHooks:
    """Optional per-frame callbacks: label lookup (labels file), sampling (label inbox)."""

    labels_for: Callable[[Frame], Any] | None = None
    on_processed: Callable[[Frame, list[Any], dict[str, Tracks]], Any] | None = None  # + the frame's tracks
    on_output: Callable[[Frame], None] | None = None
    on_events: Callable[[list[dict[str, Any]]], None] | None = None  # analytics' events of a frame
    alphas: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_labels(cls, labels_file: Any = None, sampler: Any = None) -> "PipelineHooks":
        """A stream's label lookup (``review.labels.LabelsFile``) and sampling (its ``Sampler``)."""
        return cls(labels_for=labels_file, on_processed=sampler.on_processed if sampler else None)


class RateLimited:
    """Log the first few occurrences, then one in a hundred."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.n = 0
        self.log = logger

    def __call__(self, msg: str, *args: Any) -> None:
        self.n += 1
        if self.n <= 5 or self.n % 100 == 0:
            self.log.warning(msg + " (occurrence %d)", *args, self.n)


class Stream:
    """A named stream. ``models``: the shared models, only read here (names for the HUD's timings)."""

    def __init__(self, name: str, source: FrameSource, outputs: Sequence[Output], rolling: RollingMonitor,
                 telemetry: Telemetry, hooks: PipelineHooks | None = None, hud: bool = True,
                 analytics: Analytics | None = None, models: Sequence[Model] = (), fps: float = 15.0,
                 runs: frozenset[str] | None = None) -> None:
        """runs: the names of the models run on this stream's frames (None = every model)."""
        self.name, self.source, self.runs = name, source, runs
        self.outputs, self.rolling, self.telemetry = list(outputs), rolling, telemetry
        self.hooks = hooks or PipelineHooks()
        self.hud, self.analytics, self.models = hud, analytics, list(models)
        self.fps = fps  # the configured rate: how long a silence may last before the outputs count as stale
        self._processed = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warn = RateLimited()
        self.last_output_at = 0.0
        self.first_output = threading.Event()
        self.output_beat = time.monotonic()
        self.latest_results: list[Any] = []
        self.latest_tracks: dict[str, Tracks] = {}
        self.started = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.started = time.monotonic()
        self.source.start()
        self._thread = threading.Thread(target=self._output_loop, name=f"output-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.5) -> None:
        """Stop the source and the output thread; the outputs stay open (``close`` closes them)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        self.source.stop(timeout=timeout / 2)
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        for out in self.outputs:
            try:
                out.close()
            except Exception as exc:
                log.warning("stream %s: closing output %s: %s", self.name, out.name, exc)

    def threads(self) -> dict[str, tuple[bool, float]]:
        """name -> (alive, last heartbeat) of this stream's source and output threads."""
        alive = self._thread is not None and self._thread.is_alive()
        return {"source": (self.source.thread_alive(), self.source.alive_at), "output": (alive, self.output_beat)}

    # -- the batcher's side ------------------------------------------------------------------------
    def process(self, frame: Frame, results: list[Any]) -> None:
        """Tracking, counting, labels and sampling for one frame's model results; then to the outputs.
        Every per-frame fault is logged, counted and skipped."""
        self.telemetry.count("frames_in")
        tracks: dict[str, Tracks] = {}
        for r in results:
            for stage, seconds in r.timings.items():
                self.telemetry.record(f"{r.name}.{stage}", seconds)
        if self.analytics is not None and self.analytics.enabled:
            t0 = time.perf_counter()
            try:
                tracks = self.analytics.update(results, frame.pts, frame.image)
                self.analytics.update_truth(frame.labels, frame.pts)
                if self.hooks.on_events is not None:
                    events = self.analytics.drain_events()
                    if events:
                        te = time.perf_counter()
                        self.hooks.on_events(events)  # queued: numbering, JPEGs, SQLite on the events thread
                        self.telemetry.record("events", time.perf_counter() - te)
            except Exception as exc:  # a tracking fault loses this frame's tracks, never the stream
                self.telemetry.count("frame_errors")
                self.warn("stream %s: tracking failed on frame %d: %s", self.name, frame.index, exc)
            self.telemetry.record("tracking", time.perf_counter() - t0)
        labels = frame.labels
        if labels is None and self.hooks.labels_for is not None:
            labels = self.hooks.labels_for(frame)
        if labels is not None:
            try:
                self.rolling.update(results, labels, tracks=tracks)
            except Exception as exc:
                self.telemetry.count("label_errors")
                self.warn("stream %s: labels of frame %d could not be scored: %s", self.name, frame.index, exc)
        if self.hooks.on_processed is not None:
            try:
                self.hooks.on_processed(frame, results, tracks)
            except Exception as exc:
                self.warn("stream %s: sampling frame %d failed: %s", self.name, frame.index, exc)
        self.latest_results, self.latest_tracks = results, tracks
        self._processed.put(Processed(frame, results, time.monotonic(), tracks))

    # -- the stream's own thread -------------------------------------------------------------------
    def _output_loop(self) -> None:
        while not self._stop.is_set():
            self.output_beat = time.monotonic()
            item = self._processed.get(timeout=0.25)
            if item is None:
                continue
            assert isinstance(item, Processed)
            t0 = time.perf_counter()
            try:
                image = self.annotate(item.frame, item.results, item.tracks)
            except Exception as exc:
                self.telemetry.count("frame_errors")
                self.warn("stream %s: overlay failed on frame %d: %s", self.name, item.frame.index, exc)
                continue
            self.telemetry.record("overlay", time.perf_counter() - t0)
            for out in self.outputs:
                ts = time.perf_counter()
                try:
                    out.write(image, item.frame)
                except Exception as exc:
                    self.telemetry.count(f"output_errors_{out.name}")
                    self.warn("stream %s: output %s failed: %s", self.name, out.name, exc)
                self.telemetry.record(f"encode.{out.name}", time.perf_counter() - ts)
            now = time.monotonic()
            self.telemetry.record("frame_age", now - item.frame.captured)
            self.telemetry.frame_done(now)
            self.telemetry.counters["dropped_output"] = self._processed.dropped
            self.last_output_at = now
            self.first_output.set()
            if self.hooks.on_output is not None:
                self.hooks.on_output(item.frame)

    def annotate(self, frame: Frame, results: list[Any], tracks: dict[str, Tracks] | None = None) -> Any:
        """The frame (H, W, 3) BGR with masks, lines/zones, the HUD, then boxes and tracks on top."""
        image = frame.image.copy()
        for r in results:
            if r.mask is not None:
                draw_mask(image, r.mask, r.classes, self.hooks.alphas.get(r.name, 0.45))
        tracks = tracks or {}
        analytics = self.analytics if self.analytics is not None and self.analytics.enabled else None
        if analytics is not None:
            draw_geometry(image, analytics.geometry())
        if self.hud:  # under the boxes: a detection in the top-left corner keeps its label readable
            draw_hud(image, self.hud_lines())
        trails = analytics.trails() if analytics is not None else {}
        for r in results:
            if r.name in tracks:
                # a tracked detector: detections thin and unlabelled, confirmed tracks with their ids
                if r.detections is not None:
                    draw_plain_boxes(image, r.detections.boxes)
                draw_tracks(image, tracks[r.name], r.classes, {k[1]: v for k, v in trails.items() if k[0] == r.name})
            elif r.detections is not None:
                draw_detections(image, r.detections, r.classes)
        return image

    def hud_lines(self) -> list[str]:
        lat = self.telemetry.latency(max_age=0.5)
        lines = [f"{self.telemetry.fps():5.1f} fps  age {lat.get('frame_age', {}).get('p50', 0):.0f} ms"]
        for m in self.models:
            ms = sum(lat.get(f"{m.name}.{stage}", {}).get("p50", 0.0)
                     for stage in ("preprocess", "infer", "postprocess"))  # "nms" is inside postprocess
            lines.append(f"{m.name}: {ms:.1f} ms")
        if self.analytics is not None and self.analytics.enabled:
            a = self.analytics.snapshot()
            for name, c in a["lines"].items():
                truth = f" (truth {c['truth_in']}/{c['truth_out']})" if "truth_in" in c else ""
                lines.append(f"{name}: in {c['total_in']} out {c['total_out']}{truth}")
            for name, z in a["zones"].items():
                lines.append(f"{name}: {z['total']} inside, {sum(z['entries'].values())} entered")
        snap = self.rolling.snapshot(max_age=1.0)
        for name, s in snap.items():
            if s["frames"]:
                p, r = s.get("precision"), s.get("recall")
                lines.append(f"{name} P {p if p is None else f'{p:.2f}'} R {r if r is None else f'{r:.2f}'} "
                             f"({s['frames']} labelled)")
        return lines

    def log_metrics(self) -> dict[str, Any]:
        snap = self.rolling.snapshot()
        t = self.telemetry.snapshot()
        log_event(log, logging.INFO, "metrics", stream=self.name, fps=t["fps"], latency_ms=t["latency_ms"],
                  counters=t["counters"], source=self.source.stats.state, rolling=for_log(snap))
        for w in self.rolling.drift_warnings(snap):
            log_event(log, logging.WARNING, "drift", stream=self.name, message=w)
        return snap
