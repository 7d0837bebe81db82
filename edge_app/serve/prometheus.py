"""/metrics, the Prometheus exposition of the device and of the fleet: one table of every metric family
(name, kind, help, labels) and one writer, so a family means the same on both (the fleet's series carry a
``device`` label before the device's own). Built at scrape time from a status snapshot; no global
registry."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

# name -> (kind, help, labels). The fleet adds "device" in front of the labels of the families it writes.
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "edge_fps": ("gauge", "Frames per second at the output", ()),
    "edge_stage_latency_ms": ("gauge", "Per-stage latency percentiles (ms)", ("stage", "quantile")),
    "edge_events": ("counter", "Pipeline counters", ("event",)),
    "edge_source_playing": ("gauge", "1 while the source delivers frames", ()),
    "edge_source_reconnects": ("counter", "Reconnect attempts of the source", ()),
    "edge_health": ("gauge", "1 for the current health state (ok, degraded, failing)", ("state",)),
    "edge_rolling": ("gauge", "Rolling precision/recall against sampled labels", ("model", "class", "metric")),
    "edge_stream_fps": ("gauge", "Frames per second at a stream's outputs", ("stream",)),
    "edge_stream_frames": ("counter", "Frames through a stream's outputs", ("stream",)),
    "edge_stream_source_playing": ("gauge", "1 while the stream's source delivers frames", ("stream",)),
    "edge_stream_reconnects": ("counter", "Reconnect attempts of a stream's source", ("stream",)),
    "edge_stream_rolling": ("gauge", "Rolling precision/recall of a stream", ("stream", "model", "metric")),
    "edge_line_crossings": ("counter", "Tracks that crossed a counting line (class \"all\": every class)",
                            ("stream", "line", "direction", "class")),
    "edge_zone_occupancy": ("gauge", "Tracks inside a zone now", ("stream", "zone", "class")),
    "edge_zone_entries": ("counter", "Tracks that entered a zone (class \"all\": every class)", ("stream", "zone", "class")),
    "edge_zone_exits": ("counter", "Tracks that left a zone", ("stream", "zone", "class")),
    "edge_tracks": ("gauge", "Tracks by state", ("stream", "model", "state")),
    "edge_tracks_confirmed": ("counter", "Tracks confirmed (identities given)", ("stream", "model")),
    "edge_candidate_state": ("gauge", "1 for the candidate's state", ("model", "state")),
    "edge_candidate_metric": ("gauge", "Current vs candidate on the same labelled frames", ("model", "side", "metric")),
    "edge_candidate_frames": ("gauge", "Labelled frames scored by both models", ("model",)),
    "edge_shadow_cpu_seconds": ("counter", "CPU time the candidate used (its own thread)", ("model",)),
    "edge_shadow_cpu_share": ("gauge", "CPU seconds per second the candidate used", ("model",)),
    "edge_shadow_runs": ("counter", "Frames the candidate ran on", ("model",)),
    "edge_shadow_skipped": ("counter", "Frames the candidate skipped", ("model", "reason")),
    "edge_events_queued": ("gauge", "Events queued for the events thread (numbering, snapshots, outbox)", ()),
    "edge_events_outbox": ("gauge", "Messages in the outbox not acknowledged by the broker yet", ()),
    "edge_fleet_device_online": ("gauge", "1 while the device is online (Last Will)", ()),
    "edge_fleet_last_seen_seconds": ("gauge", "Seconds since the device's last message", ()),
    "edge_fleet_events": ("counter", "Events stored from the device", ()),
    "edge_fleet_event_lag_ms": ("gauge", "Event time to stored in the fleet (newest events)", ("quantile",)),
    "edge_fleet_rejected": ("counter", "Messages refused (not the schema, or not the sender's own), by reason",
                            ("reason",)),
}


class Exposition:
    """Samples by family; ``text()`` writes them. ``prefix``: label names in front of every family's own
    (the fleet: ("device",)); families listed in ``unprefixed`` keep their own labels only."""

    def __init__(self, prefix: tuple[str, ...] = (), unprefixed: frozenset[str] = frozenset()) -> None:
        self.prefix, self.unprefixed = prefix, unprefixed
        self.samples: dict[str, list[tuple[tuple[str, ...], float]]] = defaultdict(list)

    def add(self, name: str, value: Any, *labels: Any, prefix: tuple[str, ...] = ()) -> None:
        """One sample of family ``name``: its labels in the table's order (after ``prefix`` values)."""
        own = METRICS[name][2]
        if len(labels) != len(own):
            raise ValueError(f"{name}: labels {own}, got {labels}")
        self.samples[name].append((tuple(str(v) for v in (*prefix, *labels)), float(value)))

    def text(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        samples, prefix, unprefixed = self.samples, self.prefix, self.unprefixed

        class Snapshot:
            def collect(self) -> Any:
                for name, rows in samples.items():
                    kind, text, own = METRICS[name]
                    labels = list(own if name in unprefixed else (*prefix, *own))
                    family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, text, labels=labels)
                    for values, value in rows:
                        family.add_metric(list(values), value)
                    yield family

        registry = CollectorRegistry(auto_describe=False)
        registry.register(Snapshot())
        return generate_latest(registry)


def metrics_text(status: dict[str, Any]) -> bytes:
    """The device's /metrics from its /status snapshot."""
    e = Exposition()
    e.add("edge_fps", status.get("fps", 0.0))
    for stage, q in status.get("latency_ms", {}).items():
        for name in ("p50", "p90", "p99"):
            e.add("edge_stage_latency_ms", q[name], stage, name)
    for name, value in status.get("counters", {}).items():
        e.add("edge_events", value, name)
    src = status.get("source", {})
    e.add("edge_source_playing", 1.0 if src.get("state") == "playing" else 0.0)
    e.add("edge_source_reconnects", src.get("reconnects", 0))
    current = status.get("health", {}).get("state", "ok")
    for state in ("ok", "degraded", "failing"):
        e.add("edge_health", 1.0 if state == current else 0.0, state)
    rolling(e, status.get("rolling", {}))
    ev = status.get("events")
    if isinstance(ev, dict):
        e.add("edge_events_queued", ev.get("queued", 0))
        e.add("edge_events_outbox", ev.get("outbox", 0))
    streams = status.get("streams") or {status.get("stream", "main"): status}
    for name, st in streams.items():
        src = st.get("source")
        src_state = src.get("state") if isinstance(src, dict) else src
        e.add("edge_stream_fps", st.get("fps", 0.0), name)
        e.add("edge_stream_frames", st.get("frames", st.get("counters", {}).get("frames_out", 0)), name)
        e.add("edge_stream_source_playing", 1.0 if src_state == "playing" else 0.0, name)
        e.add("edge_stream_reconnects", st.get("reconnects", 0), name)
        for model, r in (st.get("rolling") or {}).items():
            for key in ("precision", "recall", "f1", "miou"):
                if r.get(key) is not None:
                    e.add("edge_stream_rolling", r[key], name, model, key)
        analytics(e, name, st.get("analytics"))
    candidates(e, status.get("models"))
    return e.text()


def rolling(e: Exposition, snapshot: dict[str, Any], prefix: tuple[str, ...] = ()) -> None:
    """edge_rolling from a rolling snapshot (per model: its means, and per class where given)."""
    for model, s in (snapshot or {}).items():
        for key in ("precision", "recall", "f1", "miou"):
            if s.get(key) is not None:
                e.add("edge_rolling", s[key], model, "all", key, prefix=prefix)
        for cls, vals in (s.get("per_class") or {}).items():
            for key in ("precision", "recall", "f1", "iou"):
                if vals.get(key) is not None:
                    e.add("edge_rolling", vals[key], model, cls, key, prefix=prefix)


def analytics(e: Exposition, stream: str, a: dict[str, Any] | None) -> None:
    """Line crossings, zone occupancy/entries/exits and tracker counts of one stream."""
    if not a:
        return
    for line, c in a.get("lines", {}).items():
        for direction in ("in", "out"):
            for cls, n in c[direction].items():
                e.add("edge_line_crossings", n, stream, line, direction, cls)
    for zone, z in a.get("zones", {}).items():
        for cls, n in z["occupancy"].items():
            e.add("edge_zone_occupancy", n, stream, zone, cls)
        for cls, n in z["entries"].items():
            e.add("edge_zone_entries", n, stream, zone, cls)
        for cls, n in z["exits"].items():
            e.add("edge_zone_exits", n, stream, zone, cls)
    for model, c in a.get("trackers", {}).items():
        for state in ("tentative", "tracked", "lost"):
            e.add("edge_tracks", c[state], stream, model, state)
        e.add("edge_tracks_confirmed", c["confirmed_total"], stream, model)


def candidates(e: Exposition, models: Any) -> None:
    """Candidate models (edge_app.rollout): state, the A/B numbers side by side, what the shadow costs."""
    if not isinstance(models, dict):
        return
    for name, m in models.items():
        c = (m or {}).get("candidate")
        if not c:
            continue
        e.add("edge_candidate_state", 1.0, name, c["state"])
        e.add("edge_candidate_frames", c.get("frames") or 0, name)
        for side in ("current", "candidate"):
            if c.get(side) is not None:
                e.add("edge_candidate_metric", c[side], name, side, c.get("metric") or "f1")
        lat = c.get("latency_ms") or {}
        for side in ("current", "candidate"):
            if lat.get(side) is not None:
                e.add("edge_candidate_metric", lat[side], name, side, "latency_ms")
        sh = c.get("shadow")
        if sh:
            e.add("edge_shadow_cpu_seconds", sh["cpu_s"], name)
            e.add("edge_shadow_cpu_share", sh["cpu_share"], name)
            e.add("edge_shadow_runs", sh["runs"], name)
            for reason, n in sh["skipped"].items():
                e.add("edge_shadow_skipped", n, name, reason)


def fleet_metrics_text(view: dict[str, Any]) -> bytes:
    """The fleet's /metrics: each device's series from its retained (compact) status, with a ``device``
    label; the same families the device writes itself (its counts as totals: class "all")."""
    e = Exposition(prefix=("device",), unprefixed=frozenset({"edge_fleet_event_lag_ms", "edge_fleet_rejected"}))
    for d in view["devices"]:
        dev = (d["device"],)
        e.add("edge_fleet_device_online", 1.0 if d["online"] else 0.0, prefix=dev)
        if d["age_s"] is not None:
            e.add("edge_fleet_last_seen_seconds", d["age_s"], prefix=dev)
        e.add("edge_fleet_events", d["events"], prefix=dev)
        s = d["status"] or {}
        if s.get("fps") is not None:
            e.add("edge_fps", float(s["fps"]), prefix=dev)
        if s.get("source"):
            e.add("edge_source_playing", 1.0 if s["source"].get("state") == "playing" else 0.0, prefix=dev)
        rolling(e, s.get("rolling") or {}, dev)
        per_stream = {name: (st or {}).get("counts") for name, st in (s.get("streams") or {}).items()} or \
            {"main": s.get("counts")}
        for stream, counts in per_stream.items():
            for line, c in ((counts or {}).get("lines") or {}).items():
                e.add("edge_line_crossings", c.get("total_in", 0), stream, line, "in", "all", prefix=dev)
                e.add("edge_line_crossings", c.get("total_out", 0), stream, line, "out", "all", prefix=dev)
            for zone, z in ((counts or {}).get("zones") or {}).items():
                e.add("edge_zone_entries", z.get("total", 0), stream, zone, "all", prefix=dev)
    c = view.get("collector") or {}
    if c.get("lag_ms"):
        for q in ("p50", "p99"):
            e.add("edge_fleet_event_lag_ms", c["lag_ms"][q], q)
    for reason, n in sorted((c.get("rejected_by") or {}).items()):
        e.add("edge_fleet_rejected", n, reason)
    return e.text()
