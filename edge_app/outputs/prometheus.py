"""/metrics: the Prometheus exposition, built at scrape time from the status snapshot (no global registry):
the process's fps, stage latencies and counters, health, and per stream (label ``stream``) its fps, frames,
source state, rolling precision/recall, line and zone counts and tracks."""
from __future__ import annotations

from typing import Any


def metrics_text(status: dict[str, Any]) -> bytes:
    """Prometheus exposition built at scrape time from the status snapshot (no global registry)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Snapshot:
        def collect(self) -> Any:
            fps = GaugeMetricFamily("edge_fps", "Frames per second at the output")
            fps.add_metric([], status.get("fps", 0.0))
            yield fps
            lat = GaugeMetricFamily("edge_stage_latency_ms", "Per-stage latency percentiles (ms)",
                                    labels=["stage", "quantile"])
            for stage, q in status.get("latency_ms", {}).items():
                for name in ("p50", "p90", "p99"):
                    lat.add_metric([stage, name], q[name])
            yield lat
            counters = CounterMetricFamily("edge_events", "Pipeline counters", labels=["event"])
            for name, value in status.get("counters", {}).items():
                counters.add_metric([name], value)
            yield counters
            src = status.get("source", {})
            up = GaugeMetricFamily("edge_source_playing", "1 while the source delivers frames")
            up.add_metric([], 1.0 if src.get("state") == "playing" else 0.0)
            yield up
            rec = CounterMetricFamily("edge_source_reconnects", "Reconnect attempts of the source")
            rec.add_metric([], src.get("reconnects", 0))
            yield rec
            health = GaugeMetricFamily("edge_health", "1 for the current health state (ok, degraded, failing)",
                                       labels=["state"])
            current = status.get("health", {}).get("state", "ok")
            for state in ("ok", "degraded", "failing"):
                health.add_metric([state], 1.0 if state == current else 0.0)
            yield health
            roll = GaugeMetricFamily("edge_rolling", "Rolling precision/recall against sampled labels",
                                     labels=["model", "class", "metric"])
            for model, s in status.get("rolling", {}).items():
                for key in ("precision", "recall", "f1", "miou"):
                    if s.get(key) is not None:
                        roll.add_metric([model, "all", key], s[key])
                for cls, vals in s.get("per_class", {}).items():
                    for key in ("precision", "recall", "f1", "iou"):
                        if vals.get(key) is not None:
                            roll.add_metric([model, cls, key], vals[key])
            yield roll
            streams = status.get("streams") or {status.get("stream", "main"): status}
            s_fps = GaugeMetricFamily("edge_stream_fps", "Frames per second at a stream's outputs", labels=["stream"])
            s_frames = CounterMetricFamily("edge_stream_frames", "Frames through a stream's outputs", labels=["stream"])
            s_playing = GaugeMetricFamily("edge_stream_source_playing", "1 while the stream's source delivers frames",
                                          labels=["stream"])
            s_reconnects = CounterMetricFamily("edge_stream_reconnects", "Reconnect attempts of a stream's source",
                                               labels=["stream"])
            sroll = GaugeMetricFamily("edge_stream_rolling", "Rolling precision/recall of a stream",
                                      labels=["stream", "model", "metric"])
            for name, st in streams.items():
                src = st.get("source")
                src_state = src.get("state") if isinstance(src, dict) else src
                s_fps.add_metric([name], st.get("fps", 0.0))
                s_frames.add_metric([name], st.get("frames", st.get("counters", {}).get("frames_out", 0)))
                s_playing.add_metric([name], 1.0 if src_state == "playing" else 0.0)
                s_reconnects.add_metric([name], st.get("reconnects", 0))
                for model, r in (st.get("rolling") or {}).items():
                    for key in ("precision", "recall", "f1", "miou"):
                        if r.get(key) is not None:
                            sroll.add_metric([name, model, key], r[key])
            yield from (s_fps, s_frames, s_playing, s_reconnects)
            yield sroll
            yield from _candidate_metrics(status.get("models"))
            yield from _analytics_metrics([(name, st.get("analytics")) for name, st in streams.items()])

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot())
    return generate_latest(registry)


def _candidate_metrics(models: Any) -> Any:
    """Candidate models (edge_app.rollout): state, the A/B numbers side by side, and what the shadow costs."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    if not isinstance(models, dict):
        return
    state = GaugeMetricFamily("edge_candidate_state", "1 for the candidate's state", labels=["model", "state"])
    metric = GaugeMetricFamily("edge_candidate_metric", "Current vs candidate on the same labelled frames",
                               labels=["model", "side", "metric"])
    frames = GaugeMetricFamily("edge_candidate_frames", "Labelled frames scored by both models", labels=["model"])
    cpu = CounterMetricFamily("edge_shadow_cpu_seconds", "CPU time the candidate used (its own thread)", labels=["model"])
    share = GaugeMetricFamily("edge_shadow_cpu_share", "CPU seconds per second the candidate used", labels=["model"])
    runs = CounterMetricFamily("edge_shadow_runs", "Frames the candidate ran on", labels=["model"])
    skipped = CounterMetricFamily("edge_shadow_skipped", "Frames the candidate skipped", labels=["model", "reason"])
    for name, m in models.items():
        c = (m or {}).get("candidate")
        if not c:
            continue
        state.add_metric([name, c["state"]], 1.0)
        frames.add_metric([name], c.get("frames") or 0)
        for side in ("current", "candidate"):
            if c.get(side) is not None:
                metric.add_metric([name, side, c.get("metric") or "f1"], c[side])
        lat = c.get("latency_ms") or {}
        for side in ("current", "candidate"):
            if lat.get(side) is not None:
                metric.add_metric([name, side, "latency_ms"], lat[side])
        sh = c.get("shadow")
        if sh:
            cpu.add_metric([name], sh["cpu_s"])
            share.add_metric([name], sh["cpu_share"])
            runs.add_metric([name], sh["runs"])
            for reason, n in sh["skipped"].items():
                skipped.add_metric([name, reason], n)
    yield from (state, metric, frames, cpu, share, runs, skipped)


def _analytics_metrics(streams: list[tuple[str, dict[str, Any] | None]]) -> Any:
    """Line crossings, zone occupancy/entries/exits and tracker counts, labelled by stream/line/zone/class
    (one family each, whatever the number of streams: a name may appear once in an exposition)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    streams = [(name, a) for name, a in streams if a]
    if not streams:
        return
    cross = CounterMetricFamily("edge_line_crossings", "Tracks that crossed a counting line",
                                labels=["stream", "line", "direction", "class"])
    occ = GaugeMetricFamily("edge_zone_occupancy", "Tracks inside a zone now", labels=["stream", "zone", "class"])
    entries = CounterMetricFamily("edge_zone_entries", "Tracks that entered a zone", labels=["stream", "zone", "class"])
    exits = CounterMetricFamily("edge_zone_exits", "Tracks that left a zone", labels=["stream", "zone", "class"])
    active = GaugeMetricFamily("edge_tracks", "Tracks by state", labels=["stream", "model", "state"])
    confirmed = CounterMetricFamily("edge_tracks_confirmed", "Tracks confirmed (identities given)",
                                    labels=["stream", "model"])
    for stream, a in streams:
        assert a is not None
        for line, c in a.get("lines", {}).items():
            for direction in ("in", "out"):
                for cls, n in c[direction].items():
                    cross.add_metric([stream, line, direction, cls], n)
        for zone, z in a.get("zones", {}).items():
            for cls, n in z["occupancy"].items():
                occ.add_metric([stream, zone, cls], n)
            for cls, n in z["entries"].items():
                entries.add_metric([stream, zone, cls], n)
            for cls, n in z["exits"].items():
                exits.add_metric([stream, zone, cls], n)
        for model, c in a.get("trackers", {}).items():
            for state in ("tentative", "tracked", "lost"):
                active.add_metric([stream, model, state], c[state])
            confirmed.add_metric([stream, model], c["confirmed_total"])
    yield from (cross, occ, entries, exits, active, confirmed)
