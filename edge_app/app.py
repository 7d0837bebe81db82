"""``edge-app run``: the composition root. Parses the config once, builds every component from its own
section, runs the pipeline, handles signals (SIGTERM/SIGINT stop within 2 s, SIGHUP reloads thresholds
and label settings without dropping the stream) and talks to systemd (READY, WATCHDOG, STATUS, STOPPING).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import time
from typing import Any

from .config import AppConfig, ConfigError
from .health import Health, assess
from .analytics.counting import Analytics
from .events.device import DeviceEvents
from .inference.models import ModelError, ModelSpec, open_model
from .labels import LabelsFile, Sampler, build_label_hooks
from .review.api import Review
from .review.samples import SampleStore
from .logs import CONSOLE, log_event, setup_logging
from .notify import Notifier
from .outputs import OUTPUTS
from .pipeline import Pipeline
from .rolling import RollingMonitor
from .sources import open_source
from .telemetry import Telemetry

log = logging.getLogger("edge_app")
console_log = logging.getLogger(CONSOLE)


def model_specs(cfg: AppConfig) -> list[ModelSpec]:
    specs = []
    for name, m in cfg.models.items():
        if not m.enabled:
            continue
        specs.append(ModelSpec(
            name=name, kind=m.kind, artifact=cfg.resolve(m.artifact) if m.artifact else None,
            precision=m.precision, backend=m.backend, score_threshold=m.score_threshold, nms_iou=m.nms_iou,
            top_k=m.top_k, max_detections=m.max_detections,
            thresholds_file=cfg.resolve(m.thresholds_file) if m.thresholds_file else None,
            method=m.method, classes=m.classes, threads=cfg.runtime.threads,
            engine_dir=cfg.resolve(cfg.runtime.engine_dir)))
    return specs


def _make(kind: str, **kwargs: Any) -> Any:
    module, cls = OUTPUTS[kind].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


class App:
    def __init__(self, cfg: AppConfig, console: str = "json") -> None:
        """console: "text" adds a short progress line on the terminal every few seconds."""
        self.cfg = cfg
        self.console = console
        s = cfg.source
        self.notifier = Notifier()
        self.models = [open_model(spec, self._building) for spec in model_specs(cfg)]
        for m in self.models:
            log.info("model %s", m.describe())
        r = cfg.rolling
        self.rolling = RollingMonitor(iou=r.iou, window_frames=r.window_frames, window_seconds=r.window_seconds,
                                      precision_floor=r.precision_floor, recall_floor=r.recall_floor,
                                      min_labelled=r.min_labelled)
        for m in self.models:
            self.rolling.add_model(m.name, m.task, tuple(m.classes))
        self.telemetry = Telemetry()
        self.source = open_source(s, cfg.base_dir)
        self.labels_file = LabelsFile.open(cfg.resolve(cfg.labels.labels_file)) if cfg.labels.labels_file else None
        lb = cfg.labels
        self.sampler = (Sampler(cfg.resolve(lb.samples_dir), cfg.resolve(lb.inbox) if lb.inbox else None,
                                lb.sample_every, lb.max_samples_mb, self.rolling, uncertain_margin=lb.uncertain_margin,
                                disagreements=lb.disagreements, extra_per_minute=lb.extra_per_minute,
                                thresholds=self._thresholds)
                        if lb.sample_every > 0 else None)
        self.review = (Review(SampleStore(self.sampler.dir, self.sampler.inbox), self.sampler, self.rolling)
                       if self.sampler is not None and self.sampler.inbox is not None else None)
        hooks = build_label_hooks(self.labels_file, self.sampler)
        hooks.alphas = {name: m.alpha for name, m in cfg.models.items()}
        self.outputs = self._outputs()
        trackers = {name: m.tracker for name, m in cfg.models.items()
                    if m.enabled and m.kind == "detector" and m.tracker.enabled}
        self.analytics = Analytics(cfg.analytics, trackers, s.width, s.height, cfg.events.track_update_s)
        self.events = DeviceEvents.from_config(cfg)
        if self.events is not None:
            self.analytics.record_events = True
            hooks.on_events = self.events.track_events
            if self.events.mqtt is not None:
                self.outputs.append(self.events.mqtt)
                log.info("output mqtt: %s", self.events.mqtt.url)
        self.pipeline = Pipeline(self.source, self.models, self.outputs, self.rolling, self.telemetry, hooks,
                                 analytics=self.analytics)
        self._stop = threading.Event()
        self._reload = threading.Event()

    def _thresholds(self, model: str) -> Any:
        """A detector's live per-class score thresholds (C,), None for other models."""
        decoder = next((getattr(m, "decoder", None) for m in self.models if m.name == model), None)
        return getattr(decoder, "score_thresholds", None)

    def _building(self, message: str) -> None:
        log.info(message)
        self.notifier.status(message)

    def _outputs(self) -> list[Any]:
        o, s = self.cfg.output, self.cfg.source
        outs = []
        if o.http.enabled:
            outs.append(_make("http", host=o.http.host, port=o.http.port, token=o.http.token,
                              jpeg_quality=o.http.jpeg_quality, status=self.status, health=self.health,
                              record=self.telemetry.record, review=self.review))
        if o.rtsp.enabled:
            outs.append(_make("rtsp", host=o.rtsp.host, port=o.rtsp.port, path=o.rtsp.path,
                              bitrate_kbps=o.rtsp.bitrate_kbps, width=s.width, height=s.height, fps=s.fps))
        if o.record.enabled:
            outs.append(_make("record", directory=self.cfg.resolve(o.record.directory),
                              segment_s=o.record.segment_s, max_files=o.record.max_files, width=s.width,
                              height=s.height, fps=s.fps, file=o.record.file))
        for out in outs:
            url = getattr(out, "url", None)
            log.info("output %s%s", out.name, f": {url}" if url else "")
        return outs

    # -- status -------------------------------------------------------------------------------------
    def health(self) -> Health:
        """ok / degraded / failing (see health.watchdog): what the watchdog, STATUS= and /healthz say."""
        return assess(time.monotonic(), self.pipeline.threads(), self.source.stats, self.pipeline.last_output_at,
                      self.telemetry.started, wedged_after=self.cfg.runtime.wedged_after_s,
                      output_timeout=max(5.0, 3 / self.cfg.source.fps))

    def status(self) -> dict[str, Any]:
        t = self.telemetry.snapshot()
        st = self.source.stats
        rolling = self.rolling.snapshot(max_age=0.5)
        detections, tracks = [], []
        for r in self.pipeline.latest_results:
            if r.detections is not None:
                for box, score, cls in zip(r.detections.boxes.tolist(), r.detections.scores.tolist(),
                                           r.detections.classes.tolist()):
                    detections.append({"model": r.name, "class": r.classes[cls], "score": score, "box": box})
            if r.tracks is not None:
                for box, tid, score, cls in zip(r.tracks.boxes.tolist(), r.tracks.ids.tolist(),
                                                r.tracks.scores.tolist(), r.tracks.classes.tolist()):
                    tracks.append({"model": r.name, "id": tid, "class": r.classes[cls], "score": score, "box": box})
        return {**t, "health": self.health().as_dict(),
                "source": {"uri": self.source.uri, "state": st.state, "frames": st.frames,
                           "dropped": st.dropped, "reconnects": st.reconnects, "errors": st.errors,
                           "bad_frames": st.bad_frames, "loops": st.loops, "last_error": st.last_error},
                "rolling": rolling, "detections": detections[:50], "tracks": tracks[:100],
                "analytics": self.analytics.snapshot() if self.analytics.enabled else None,
                "events": self.events.describe() if self.events is not None else None,
                "models": [m.describe() for m in self.models],
                "warnings": self.rolling.drift_warnings(rolling)}

    # -- run ----------------------------------------------------------------------------------------
    def _signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def reload(self) -> None:
        """SIGHUP: thresholds files and label settings again; the stream keeps running."""
        for m in self.models:
            m.reload_thresholds()
        if self.labels_file is not None:
            self.labels_file.reload()
        log_event(log, logging.INFO, "reloaded", models=[m.describe() for m in self.models])
        if self.events is not None:
            self.events.reloaded([m.describe() for m in self.models])

    def run(self, max_seconds: float | None = None) -> int:
        self._signals()
        self.pipeline.start()
        # READY = models loaded and outputs serving; a camera that is down at boot is a state shown in
        # STATUS and /healthz, not a reason to hold the unit in "activating" until TimeoutStartSec.
        self.notifier.ready(self._status_line(self.health()))
        log_event(log, logging.INFO, "started", source=self.source.uri,
                  outputs=[getattr(o, "url", o.name) for o in self.outputs])
        started = time.monotonic()
        last_log = last_dog = last_status = last_line = 0.0
        first_frame = False
        state = "ok"
        interval = self.cfg.rolling.log_every_s
        try:
            while not self._stop.wait(0.1):
                now = time.monotonic()
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if not first_frame and self.pipeline.first_output.is_set():
                    first_frame = True
                    last_line = now  # the first progress line once there is a rate to show
                    log_event(log, logging.INFO, "ready", seconds=round(now - started, 2))
                health = self.health()
                if health.state != state:
                    level = logging.INFO if health.state == "ok" else logging.WARNING
                    log_event(log, level, "health", state=health.state, reasons=list(health.reasons))
                    state = health.state
                    last_status = 0.0
                dog = self.notifier.watchdog_interval
                if dog and now - last_dog >= dog and health.works:
                    self.notifier.watchdog()  # the process works (a lost camera included); a stuck thread stops it
                    last_dog = now
                if now - last_status >= 2:
                    self.notifier.status(self._status_line(health))
                    last_status = now
                if now - last_log >= interval:
                    self.pipeline.log_metrics()
                    last_log = now
                if self.events is not None:
                    try:
                        analytics = self.analytics.snapshot() if self.analytics.enabled else None
                        drift = self.rolling.drift_warnings(self.rolling.snapshot(max_age=1.0))
                        self.events.tick(now, self.status, self.source.stats, analytics, drift)
                    except Exception as exc:  # an event fault must not stop the service
                        log.warning("events: %s", exc)
                if self.console == "text" and now - last_line >= 3.0 and first_frame:
                    self._progress_line()
                    last_line = now
                if max_seconds is not None and now - started >= max_seconds:
                    break
        finally:
            self.shutdown()
        return 0

    def _progress_line(self) -> None:
        t = self.telemetry.snapshot()
        log_event(console_log, logging.INFO, "progress", fps=t["fps"], latency_ms=t["latency_ms"],
                  counters=t["counters"], models=[m.name for m in self.models], source=self.source.stats.state,
                  rolling=self.rolling.snapshot(max_age=1.0))

    def _status_line(self, health: Health) -> str:
        line = f"{self.telemetry.fps():.1f} fps, source {self.source.stats.state}"
        return line if health.state == "ok" else f"{line}; {health.state}: {'; '.join(health.reasons)}"

    def shutdown(self) -> None:
        self.notifier.stopping()
        t0 = time.monotonic()
        self.pipeline.stop(timeout=1.0)
        for out in self.outputs:
            try:
                out.close()
            except Exception as exc:
                log.warning("closing output %s: %s", out.name, exc)
        if self.events is not None:
            self.events.close()
        for m in self.models:
            m.close()
        log_event(log, logging.INFO, "stopped", seconds=round(time.monotonic() - t0, 2),
                  counters=dict(self.telemetry.counters))
        self.notifier.close()


def main(args: argparse.Namespace) -> int:
    """``edge-app run [INPUT] [OUTPUT ...] [--model ARTIFACT ...]``: the config file, overridden by the
    command line (``cli.overrides``); every problem named at once, exit 2."""
    from .cli.overrides import run_config

    given = getattr(args, "config", None)
    try:
        # an explicit --config must exist; the default config.toml may be absent when the command line
        # names the input and the models (a config-less run, like jetson-inference's tools)
        cfg = run_config(given or "config.toml", getattr(args, "input", None), getattr(args, "outputs", None),
                         getattr(args, "model", None), required=given is not None)
    except ConfigError as exc:
        print(f"edge-app run: {exc}", file=sys.stderr)
        return 2
    lg = cfg.logging
    console = setup_logging(lg.level, cfg.resolve(lg.file) if lg.file else None, lg.max_bytes, lg.backups,
                            console=getattr(args, "log_format", "auto") or "auto")
    try:
        app = App(cfg, console)
    except (ModelError, OSError, ValueError, RuntimeError) as exc:
        log_event(log, logging.ERROR, "startup failed", error=str(exc))
        print(f"edge-app run: {exc}", file=sys.stderr)
        return 2
    return app.run(getattr(args, "max_seconds", None))
