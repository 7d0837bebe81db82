"""``edge-app run``: the composition root. Parses the config once, builds every component from its own
section, runs the pipeline, handles signals (SIGTERM/SIGINT stop within 2 s, SIGHUP reloads thresholds
and label settings without dropping the stream) and talks to systemd (READY, WATCHDOG, STATUS, STOPPING).
"""
from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .config import AppConfig, ConfigError, StreamConfig, load_config, model_tiles
from .events.device import DeviceEvents
from .inference.models import ModelSpec, open_model
from .health import Health
from .health.disk import DiskBudget
from .serve.guard import Limits
from .review.labels import Sampler
from .review.api import Review
from .review.samples import SampleStore
from .rollout.agent import FleetAgent
from .rollout.api import ModelsApi
from .rollout.manager import RolloutManager
from .rollout.state import active_artifacts
from .logs import CONSOLE, log_event
from .health.notify import Notifier
from .outputs import OUTPUTS
from .streams.api import StreamsApi
from .streams.geometry import GeometryApi
from .streams.batcher import Batcher
from .streams.manager import StreamSet, describe, new_rolling
from .streams.models import LiveModels
from .streams.telemetry import Telemetry

log = logging.getLogger("edge_app")
console_log = logging.getLogger(CONSOLE)


def model_specs(cfg: AppConfig) -> list[ModelSpec]:
    rt = cfg.runtime
    streams = len(cfg.stream_configs())
    # Several streams and workers: each worker's call on its own cores (data-parallel across streams) beats
    # splitting every frame across all of them: 77 vs 62 fps with 4 streams on 2 cores (README). A backend
    # takes the model's threads and how many calls run at once, and splits them (threads / requests each).
    requests = 1 if streams == 1 else max(1, min(rt.inference_workers, rt.threads))
    specs = []
    promoted = active_artifacts(cfg.resolve(cfg.rollout.state_dir))  # a promotion outlives a restart
    for name, m in cfg.models.items():
        if not m.enabled:
            continue
        p = promoted.get(name) if m.kind != "classical" else None
        if p is not None:
            log.info("model %s: running %s, promoted over the config's %s", name, p["artifact"], m.artifact)
        artifact = Path(p["artifact"]) if p else cfg.resolve(m.artifact) if m.artifact else None
        thresholds = (Path(p["thresholds_file"]) if p.get("thresholds_file") else None) if p else \
            cfg.resolve(m.thresholds_file) if m.thresholds_file else None
        specs.append(ModelSpec(
            name=name, kind=m.kind, artifact=artifact,
            precision=p.get("precision", "auto") if p else m.precision, backend=m.backend,
            score_threshold=m.score_threshold, nms_iou=m.nms_iou,
            top_k=m.top_k, max_detections=m.max_detections,
            thresholds_file=thresholds,
            method=m.method, classes=m.classes, threads=rt.threads, requests=requests,
            engine_dir=cfg.state(cfg.runtime.engine_dir), max_batch=cfg.runtime.max_batch,
            opt_batch=min(cfg.runtime.max_batch, len(cfg.stream_configs())), tiles=model_tiles(cfg, name),
            class_groups=tuple((g, tuple(c)) for g, c in m.class_groups.items()), keep=tuple(m.keep)))
    return specs


def _make(kind: str, **kwargs: Any) -> Any:
    module, cls = OUTPUTS[kind].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


class App:
    def __init__(self, cfg: AppConfig, console: str = "json", config_path: Path | None = None) -> None:
        """console: "text" adds a short progress line on the terminal every few seconds; config_path: the
        file SIGHUP reads [[streams]] from again."""
        self.cfg = cfg
        self.config_path = Path(config_path) if config_path is not None else None
        self.console = console
        self.notifier = Notifier()
        self.models = [open_model(spec, self._building) for spec in model_specs(cfg)]
        for m in self.models:
            log.info("model %s", m.describe())
        self.telemetry = Telemetry()  # the process's own: batches; each stream has its own
        # this run, on every sample it saves (/review shows a run's frames, not every run's)
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()
        configs = cfg.stream_configs()
        self.batching = self._choose_batching(min(len(configs), cfg.runtime.max_batch))
        self.several = bool(cfg.streams)  # [[streams]]: per-stream RTSP mounts and recording folders
        lb = cfg.labels
        events_on = cfg.output.mqtt.enabled or bool(cfg.events.file)
        # One disk budget for every writer: on the outbox's disk they leave its reserve alone.
        self.disk = DiskBudget(cfg.events.reserve_mb * 2**20, cfg.state(cfg.events.state_dir) if events_on else None)
        # Sampling for labelling follows the first stream (the review page labels one camera's frames).
        self.sampler = (Sampler(cfg.state(lb.samples_dir), cfg.state(lb.inbox) if lb.inbox else None,
                                lb.sample_every, lb.max_samples_mb, new_rolling(cfg),
                                uncertain_margin=lb.uncertain_margin, disagreements=lb.disagreements,
                                extra_per_minute=lb.extra_per_minute, thresholds=self._thresholds,
                                disk=self.disk, run=self.run_id, stream=configs[0].name)
                        if lb.sample_every > 0 else None)
        self.review = (Review(SampleStore(self.sampler.dir, self.sampler.inbox, lb.max_boxes), self.sampler,
                              self.sampler.rolling)
                       if self.sampler is not None and self.sampler.inbox is not None else None)
        self.events = DeviceEvents.from_config(cfg, self.disk)
        self.specs = {s.name: s for s in model_specs(cfg)}
        self.live = LiveModels(self.models, self.specs, self._building)
        self.rollout = RolloutManager(cfg, live=self.live.get, opener=self.live.open_as, swap=self.live.swap,
                                      stats=self.live.stats, emit=self._emit,
                                      failing=lambda: "; ".join(self.health().reasons)
                                      if self.health().state == "failing" else "",
                                      samples_dir=self.sampler.dir if self.sampler is not None else None)
        if self.sampler is not None:
            self.sampler.on_labels = self.rollout.on_labels
        self.agent = FleetAgent.over(self.rollout, self.events, cfg.rollout)  # a fleet's commands, over MQTT
        # no model runs a batch as one call: gathering frames would only add latency
        batches = any(getattr(m, "max_batch", 1) != 1 and getattr(m, "batching", False) for m in self.models)
        # frame by frame, a worker takes one frame at a time: a big batch run serially by one worker would
        # leave the other idle and let a lone stream lap the batched ones (measured: 43 vs 15 fps)
        self.batcher = Batcher(self.models, self.telemetry, max_batch=cfg.runtime.max_batch if batches else 1,
                               batch_timeout_s=cfg.runtime.batch_timeout_ms / 1000.0 if batches else 0.0,
                               workers=cfg.runtime.inference_workers)
        self.streams = StreamSet(cfg, self.models, self.batcher, self._stream_outputs,
                                 events=self.events,
                                 sampler=self.sampler, sampled=configs[0].name, shadow=self.rollout.on_frame)
        self.live.attach(self.batcher, self.streams)
        self.api = StreamsApi(self.streams)
        self.geometry = GeometryApi(self.streams, self.config_path)  # the page's line and zone editor
        self.models_api = ModelsApi(self.rollout, self._models_status, cfg.base_dir)
        self.http, self.rtsp = self._servers()
        self.outputs: list[Any] = [o for o in (self.http, self.rtsp) if o is not None]
        if self.events is not None and self.events.mqtt is not None:
            self.outputs.append(self.events.mqtt)
            log.info("output mqtt: %s", self.events.mqtt.url)
        for sc in configs:
            self.streams.add(sc, start=False)
        self._stop = threading.Event()
        self._reload = threading.Event()

    def _choose_batching(self, n: int) -> dict[str, Any]:
        """Per model: how several images reach its backend (``inference.dispatch``: one call, one call per
        image, calls in flight) for the frames of ``n`` streams or one frame's tiles (runtime.batching;
        "auto" measures the three here, on this CPU and backend)."""
        mode, out = self.cfg.runtime.batching, {}
        fixed = {"on": "batch", "off": "frames", "requests": "requests"}
        for m in self.models:
            if not hasattr(m, "measure_modes"):
                continue
            tiled = getattr(m, "tiled", False)
            if mode != "auto":
                m.mode = fixed[mode]
                if m.mode == "requests" and getattr(m.backend, "requests", 1) < 2 and m.opener is not None:
                    m.backend.close()
                    m.backend = m.opener(max(2, min(self.cfg.runtime.threads, n)))
                out[m.name] = {"mode": m.mode, "batching": m.batching}
                continue
            if n < 2 and not tiled:
                continue
            t = m.measure_modes(n)
            out[m.name] = {"batching": m.batching, "streams": n, "backend": m.backend.name, **t}
            log_event(log, logging.INFO, "batching", model=m.name, **out[m.name])
        return out

    @property
    def first(self) -> Any:
        """The first stream (what the single-[source] form calls the source)."""
        runs = self.streams.all()
        return runs[0].stream if runs else None

    def _thresholds(self, model: str) -> Any:
        """A detector's live per-class score thresholds (C,), None for other models."""
        decoder = next((getattr(m, "decoder", None) for m in self.models if m.name == model), None)
        return getattr(decoder, "score_thresholds", None)

    # -- models and their candidates (edge_app.rollout) ------------------------------------------------
    def _emit(self, kind: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.bus.emit(kind, **fields)

    def _models_status(self, compact: bool = False) -> dict[str, Any]:
        return {m.name: {"model": m.describe(), "candidate": self.rollout.describe(m.name, compact)}
                for m in self.models}

    def _building(self, message: str) -> None:
        log.info(message)
        self.notifier.status(message)

    def _servers(self) -> tuple[Any, Any]:
        """The one HTTP server (every stream's views, the APIs) and the one RTSP server (a mount per stream)."""
        o = self.cfg.output
        http = rtsp = None
        if o.http.enabled:
            http = _make("http", host=o.http.host, port=o.http.port, token=o.http.token,
                         jpeg_quality=o.http.jpeg_quality, status=self.status, health=self.health,
                         record=self.telemetry.record, review=self.review, extras=[self.api, self.geometry, self.models_api],
                         limits=Limits(head_s=o.http.head_timeout_s, body_s=o.http.body_timeout_s,
                                       max_connections=o.http.max_connections))
            log.info("output http: %s", http.url)
        if o.rtsp.enabled:
            from .outputs.rtsp import RtspServer
            rtsp = RtspServer(o.rtsp.host, o.rtsp.port)
        return http, rtsp

    def _stream_outputs(self, sc: StreamConfig) -> list[Any]:
        o = self.cfg.output
        outs: list[Any] = []
        if self.http is not None:
            outs.append(self.http.sink(sc.name))
        if self.rtsp is not None and sc.rtsp:
            path = f"{o.rtsp.path.rstrip('/')}/{sc.name}" if self.several else o.rtsp.path
            outs.append(_make("rtsp", path=path, bitrate_kbps=o.rtsp.bitrate_kbps, width=sc.width,
                              height=sc.height, fps=sc.fps, server=self.rtsp))
        if o.record.enabled and sc.record:
            directory = self.cfg.state(o.record.directory)
            outs.append(_make("record", directory=directory / sc.name if self.several else directory,
                              segment_s=o.record.segment_s, max_files=o.record.max_files, width=sc.width,
                              height=sc.height, fps=sc.fps, file=o.record.file, disk=self.disk))
        for out in outs:
            url = getattr(out, "url", None)
            log.info("stream %s output %s%s", sc.name, out.name, f": {url}" if url else "")
        return outs

    # -- status -------------------------------------------------------------------------------------
    def health(self) -> Health:
        """ok / degraded / failing (see health.watchdog): what the watchdog, STATUS= and /healthz say; a
        writer that cannot write (events, samples, recordings: a full disk) is degraded, named."""
        h = self.streams.health(time.monotonic(), (self.batcher.thread_alive(), self.batcher.beat),
                                self.cfg.runtime.wedged_after_s)
        disk = self.disk.problems()
        if not disk or h.state == "failing":
            return h
        return Health("degraded", (*h.reasons, *disk))

    def status(self) -> dict[str, Any]:
        """The process (fps and counters summed over streams, batches) and ``streams``: each stream's own.
        The first stream's source, rolling P/R, counts, detections and tracks also sit at the top level
        (what a single-camera reader of /status has always found there)."""
        now = time.monotonic()
        streams = {r.config.name: describe(r, now) for r in self.streams.all()}
        first = next(iter(streams.values()), None)
        t = self.telemetry.snapshot()
        counters = dict(t["counters"])
        for st in streams.values():
            for k, v in st["counters"].items():
                counters[k] = counters.get(k, 0) + v
        latency = dict(first["latency_ms"]) if first else {}
        latency.update({k: v for k, v in t["latency_ms"].items()})
        src = ({"uri": first["uri"], "state": first["source"], "frames": first["captured"],
                "dropped": first["dropped"], "reconnects": first["reconnects"], "errors": first["errors"],
                "bad_frames": first["bad_frames"], "loops": first["loops"], "last_error": first["last_error"]}
               if first else {})
        return {"fps": round(sum(st["fps"] for st in streams.values()), 2), "latency_ms": latency,
                "counters": counters, "uptime_s": t["uptime_s"], "run": self.run_id, "health": self.health().as_dict(),
                "source": src, "rolling": first["rolling"] if first else {},
                "detections": first["detections"] if first else [], "tracks": first["tracks"] if first else [],
                "analytics": first["analytics"] if first else None,
                "events": self.events.describe() if self.events is not None else None,
                "models": self._models_status(),
                "rollout": self.agent.describe() if self.agent is not None else None,
                "batches": {str(k): v for k, v in sorted(self.batcher.batch_sizes.items())},
                "batching": self.batching,
                "warnings": [w for st in streams.values() for w in st["warnings"]],
                "streams": streams}

    # -- run ----------------------------------------------------------------------------------------
    def _signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def reload(self) -> None:
        """SIGHUP: thresholds files and label settings again, and the [[streams]] of the config file:
        streams gone from it are removed, new ones added, changed ones rebuilt; the others keep running."""
        for m in self.models:
            m.reload_thresholds()
        self.streams.reload()
        changes = self._reload_streams()
        log_event(log, logging.INFO, "reloaded", models=[m.describe() for m in self.models], streams=changes)
        if self.events is not None:
            self.events.reloaded([m.describe() for m in self.models])

    def _reload_streams(self) -> dict[str, Any] | None:
        if self.config_path is None or not self.config_path.is_file():
            return None
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:  # a broken edit must not take the running streams down
            log_event(log, logging.ERROR, "reload refused", error=str(exc))
            return {"error": str(exc)}
        if not (new.streams or self.several):
            return None  # a single-[source] run: its source may come from the command line; kept
        if new.models != self.cfg.models or new.output != self.cfg.output:
            log.warning("reload: models and outputs are read at start only; restart to apply their changes")
        self.streams.cfg = new
        return self.streams.reconcile(new.stream_configs())

    def run(self, max_seconds: float | None = None) -> int:
        self._signals()
        self.streams.start()
        self.batcher.start()
        self.rollout.start()
        # READY = models loaded and outputs serving; a camera that is down at boot is a state shown in
        # STATUS and /healthz, not a reason to hold the unit in "activating" until TimeoutStartSec.
        self.notifier.ready(self._status_line(self.health()))
        log_event(log, logging.INFO, "started", streams={r.config.name: r.config.uri for r in self.streams.all()},
                  source=self.first.source.uri if self.first is not None else None,
                  outputs=[getattr(o, "url", o.name) for o in self.outputs])
        log_event(log, logging.INFO, "ready", streams=[r.config.name for r in self.streams.all()],
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
                if not first_frame and any(r.stream.first_output.is_set() for r in self.streams.all()):
                    first_frame = True
                    last_line = now  # the first progress line once there is a rate to show
                    log_event(log, logging.INFO, "first_frame", seconds=round(now - started, 2))
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
                    for r in self.streams.all():
                        r.stream.log_metrics()
                    last_log = now
                if self.events is not None:
                    try:
                        self.events.tick(now, self.status, self._event_view())
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

    def _event_view(self) -> dict[str, tuple[Any, Any, list[str]]]:
        out = {}
        for r in self.streams.all():
            s = r.stream
            analytics = s.analytics.snapshot() if s.analytics is not None and s.analytics.enabled else None
            out[r.config.name] = (s.source, analytics, s.rolling.drift_warnings(s.rolling.snapshot(max_age=1.0)))
        return out

    def _progress_line(self) -> None:
        st = self.status()
        log_event(console_log, logging.INFO, "progress", fps=st["fps"], latency_ms=st["latency_ms"],
                  counters=st["counters"], models=[m.name for m in self.models], source=st["source"].get("state"),
                  streams={n: {"fps": v["fps"], "source": v["source"]} for n, v in st["streams"].items()},
                  rolling=st["rolling"])

    def _status_line(self, health: Health) -> str:
        runs = self.streams.all()
        fps = sum(r.stream.telemetry.fps() for r in runs)
        states = ", ".join(f"{r.config.name} {r.stream.source.stats.state}" for r in runs) if self.several else \
            f"source {runs[0].stream.source.stats.state}" if runs else "no streams"
        line = f"{fps:.1f} fps, {states}"
        return line if health.state == "ok" else f"{line}; {health.state}: {'; '.join(health.reasons)}"

    def shutdown(self) -> None:
        self.notifier.stopping()
        t0 = time.monotonic()
        if self.agent is not None:
            self.agent.close()
        self.rollout.close()
        self.batcher.stop(timeout=0.5)
        self.streams.stop(timeout=1.0)
        self.streams.close()
        for out in self.outputs:
            try:
                out.close()
            except Exception as exc:
                log.warning("closing output %s: %s", out.name, exc)
        if self.events is not None:
            self.events.close()
        for m in self.models:
            m.close()
        counters: dict[str, int] = {}
        for r in self.streams.all():
            for k, v in r.stream.telemetry.counters.items():
                counters[k] = counters.get(k, 0) + v
        log_event(log, logging.INFO, "stopped", seconds=round(time.monotonic() - t0, 2), counters=counters)
        self.notifier.close()
