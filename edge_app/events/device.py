"""The device's events, wired from the config: the bus, its sinks, the MQTT output, and the periodic
and state-change events the app reports (counts, drift, source lost/back, reloads, status).

``DeviceEvents.from_config(cfg)`` is None when neither MQTT nor the events file is configured. The app
calls ``track_events`` from the pipeline (analytics' events of each frame), ``tick`` from its main loop
(periodic counts, retained status, health transitions, drift), ``reloaded`` on SIGHUP, ``close`` last.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from ..config.schema import AppConfig
from ..health.disk import DiskBudget
from .bus import EventBus, JsonLinesSink
from .mqtt import MqttOutput, device_name
from .outbox import Outbox
from .snapshots import SnapshotStore

log = logging.getLogger("edge_app.events")
STREAM = "main"


def discovery_messages(prefix: str, device: str, lines: list[str], zones: list[str],
                       streams: dict[str, tuple[list[str], list[str]]] | None = None) -> list[tuple[str, str]]:
    """Home Assistant MQTT discovery: availability and a sensor per line direction and zone, read from the
    retained status topic (the way Frigate and Viseron announce theirs). ``lines``/``zones``: the first
    stream's (their sensors keep the names they had with one camera); ``streams``: name -> (lines, zones)
    of the other streams, read from ``streams.NAME.counts`` of the status."""
    status, availability = f"{prefix}/{device}/status", f"{prefix}/{device}/availability"
    dev = {"identifiers": [f"edge-vision-{device}"], "name": f"edge-vision {device}", "manufacturer": "edge-vision"}
    common = {"availability_topic": availability, "payload_available": "online", "payload_not_available": "offline",
              "device": dev}
    out = [(f"homeassistant/binary_sensor/{device}/online/config",
            json.dumps({**common, "name": "online", "unique_id": f"{device}_online", "state_topic": availability,
                        "payload_on": "online", "payload_off": "offline", "device_class": "connectivity"})),
           (f"homeassistant/sensor/{device}/fps/config",
            json.dumps({**common, "name": "fps", "unique_id": f"{device}_fps", "state_topic": status,
                        "value_template": "{{ value_json.fps }}", "unit_of_measurement": "fps"}))]
    for line in lines:
        for direction in ("in", "out"):
            out.append((f"homeassistant/sensor/{device}/{line}_{direction}/config", json.dumps({
                **common, "name": f"{line} {direction}", "unique_id": f"{device}_{line}_{direction}", "state_topic": status,
                "value_template": f"{{{{ value_json.counts.lines['{line}'].total_{direction} }}}}",
                "state_class": "total_increasing"})))
    for zone in zones:
        out.append((f"homeassistant/sensor/{device}/{zone}_occupancy/config", json.dumps({
            **common, "name": f"{zone} occupancy", "unique_id": f"{device}_{zone}_occupancy", "state_topic": status,
            "value_template": f"{{{{ value_json.counts.zones['{zone}'].total }}}}", "state_class": "measurement"})))
    for stream, (s_lines, s_zones) in (streams or {}).items():
        counts = f"value_json.streams['{stream}'].counts"
        for line in s_lines:
            for direction in ("in", "out"):
                uid = f"{device}_{stream}_{line}_{direction}"
                out.append((f"homeassistant/sensor/{device}/{stream}_{line}_{direction}/config", json.dumps({
                    **common, "name": f"{stream} {line} {direction}", "unique_id": uid, "state_topic": status,
                    "value_template": f"{{{{ {counts}.lines['{line}'].total_{direction} }}}}",
                    "state_class": "total_increasing"})))
        for zone in s_zones:
            out.append((f"homeassistant/sensor/{device}/{stream}_{zone}_occupancy/config", json.dumps({
                **common, "name": f"{stream} {zone} occupancy", "unique_id": f"{device}_{stream}_{zone}_occupancy",
                "state_topic": status, "value_template": f"{{{{ {counts}.zones['{zone}'].total }}}}",
                "state_class": "measurement"})))
    return out


class DeviceEvents:
    def __init__(self, cfg: AppConfig, disk: DiskBudget | None = None) -> None:
        """disk: the device's disk budget (snapshots stay out of the outbox's reserve; what cannot be
        written is said there, for the health)."""
        m, e = cfg.output.mqtt, cfg.events
        self.device = device_name(m.device_id)
        state = cfg.state(e.state_dir)
        self.disk = disk or DiskBudget()
        self.outbox = Outbox(state / "outbox.sqlite", e.outbox_max_mb * 2**20)
        snapshots = (SnapshotStore(state / "snapshots", e.snapshots_max_mb * 2**20, disk=self.disk)
                     if e.snapshots else None)
        jsonl = JsonLinesSink(cfg.state(e.file)) if e.file else None
        prefix = f"{m.topic_prefix}/{self.device}" if m.enabled else None
        self.bus = EventBus(self.device, STREAM, self.outbox, prefix, jsonl, snapshots)
        self.mqtt = MqttOutput(m, self.device, self.outbox, cfg.resolve) if m.enabled else None
        if self.mqtt is not None and m.ha_discovery:
            first, *others = cfg.stream_configs()
            self.mqtt.set_discovery(discovery_messages(
                m.topic_prefix, self.device, [l.name for l in first.analytics.lines],
                [z.name for z in first.analytics.zones],
                {s.name: ([l.name for l in s.analytics.lines], [z.name for z in s.analytics.zones]) for s in others}))
        self.counts_every, self.status_every = e.counts_every_s, m.status_every_s
        self._last_counts = self._last_status = time.monotonic()
        self._source_state: dict[str, str] = {}
        self._drift: dict[str, set[str]] = {}

    @classmethod
    def from_config(cls, cfg: AppConfig, disk: DiskBudget | None = None) -> "DeviceEvents | None":
        return cls(cfg, disk) if cfg.output.mqtt.enabled or cfg.events.file else None

    def track_events(self, events: list[dict[str, Any]], stream: str = STREAM) -> None:
        """Analytics' events of a frame (track_new/update/end, line_crossed, zone_entered/left)."""
        for e in events:
            kind = e.pop("kind")
            snapshot = e.pop("snapshot", None)
            self.bus.emit(kind, snapshot=snapshot, stream=stream, **e)

    def tick(self, now: float, status: Any, streams: dict[str, tuple[Any, dict[str, Any] | None, list[str]]]) -> None:
        """status: a callable giving the app's status (only called when a status is due); streams: name ->
        (its source, its analytics snapshot or None, its drift warnings)."""
        self.bus.retry()  # events that waited for the disk go out without waiting for a new one
        self._report_disk()
        counts_due = now - self._last_counts >= self.counts_every
        if counts_due:
            self._last_counts = now
        for name, (source, analytics, drift) in streams.items():
            state, before = source.stats.state, self._source_state.get(name, "starting")
            if state != before:
                if state == "reconnecting" and before in ("playing", "starting"):
                    self.bus.emit("source_lost", stream=name, uri=source_uri(source), reason=source.stats.last_error or "")
                elif state == "playing" and before == "reconnecting":
                    self.bus.emit("source_back", stream=name, uri=source_uri(source),
                                  reason=f"after {source.stats.reconnects} reconnects")
                self._source_state[name] = state
            for message in drift:
                if message not in self._drift.get(name, set()):
                    self.bus.emit("drift", stream=name, model=message.split(":")[0], message=message)
            self._drift[name] = set(drift)
            if analytics and counts_due:
                self.bus.emit("counts", stream=name,
                              lines={k: {"in": v["in"], "out": v["out"]} for k, v in analytics["lines"].items()},
                              zones={k: {"occupancy": v["occupancy"], "entries": v["entries"], "exits": v["exits"]}
                                     for k, v in analytics["zones"].items()})
        for gone in set(self._source_state) - set(streams):  # a stream removed at runtime
            self._source_state.pop(gone, None)
            self._drift.pop(gone, None)
        if self.mqtt is not None and now - self._last_status >= self.status_every:
            self._last_status = now
            first = next(iter(streams.values()), (None, None, []))[1]
            self.mqtt.publish_status(compact_status(self.device, status(), first))

    def _report_disk(self) -> None:
        b = self.bus
        if b.waiting and b.write_error:
            self.disk.problem("events", f"{b.waiting} waiting in memory, the outbox cannot write: {b.write_error}")
        else:
            self.disk.clear("events")
        if b.jsonl_error:
            self.disk.problem("events file", f"cannot write: {b.jsonl_error}")
        else:
            self.disk.clear("events file")

    def reloaded(self, models: list[str]) -> None:
        self.bus.emit("model_reloaded", models=models)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "events": dict(self.bus.counts), "outbox": len(self.outbox),
                               "outbox_dropped": self.outbox.dropped, "waiting": self.bus.waiting, "queued": self.bus.waiting,
                               "last_seq": self.outbox.last_seq}
        if self.mqtt is not None:
            out["mqtt"] = self.mqtt.describe()
        return out

    def close(self) -> None:
        if self.mqtt is not None:
            self.mqtt.close()
        self.bus.close()
        self.outbox.close()


def source_uri(source: Any) -> str:
    return str(getattr(source, "uri", ""))


def compact_status(device: str, status: dict[str, Any], analytics: dict[str, Any] | None) -> dict[str, Any]:
    """The retained status: small enough to send every few seconds, enough for a fleet view."""
    rolling = {}
    for name, r in (status.get("rolling") or {}).items():
        rolling[name] = {k: r.get(k) for k in ("precision", "recall", "f1", "miou", "frames") if k in r}
    src = status.get("source", {})
    streams = {name: {"fps": st.get("fps"), "source": st.get("source"), "frames": st.get("frames"),
                      "counts": _counts(st.get("analytics"))} for name, st in (status.get("streams") or {}).items()}
    return {"device": device, "streams": streams, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "fps": status.get("fps"),
            "health": status.get("health", {}).get("state"), "source": {k: src.get(k) for k in ("uri", "state", "reconnects")},
            "rolling": rolling, "counts": _counts(analytics), "models": _models(status.get("models"))}


def _models(models: Any) -> dict[str, Any]:
    """Each model's candidate for the fleet (state, the A/B numbers, per class without the intervals)."""
    out: dict[str, Any] = {}
    for name, m in (models or {}).items() if isinstance(models, dict) else []:
        c = (m or {}).get("candidate")
        if c is None:
            out[name] = {"candidate": None}
            continue
        brief = {k: v for k, v in c.items() if k not in ("per_class", "shadow", "rule")}
        brief["per_class"] = {cls: {side: {k: v.get(k) for k in ("precision", "recall", "f1", "iou") if k in v}
                                    for side, v in row.items()} for cls, row in (c.get("per_class") or {}).items()}
        if c.get("shadow"):
            brief["shadow"] = {k: c["shadow"].get(k) for k in ("runs", "cpu_share", "latency_ms")}
        out[name] = {"candidate": brief}
    return out


def _counts(analytics: dict[str, Any] | None) -> dict[str, Any]:
    return {"lines": {k: {"total_in": v["total_in"], "total_out": v["total_out"]}
                      for k, v in (analytics or {}).get("lines", {}).items()},
            "zones": {k: {"total": v["total"]} for k, v in (analytics or {}).get("zones", {}).items()}}
