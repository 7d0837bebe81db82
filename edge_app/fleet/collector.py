"""The fleet's MQTT side (paho-mqtt >= 2, MQTT 5): subscribes to every device under a topic prefix and
writes what arrives into the ``FleetStore``.

Subscriptions: events, status and snapshots through the shared subscription ``$share/<group>/...``, so
several fleet instances in one group split the devices' messages between them (each message goes to one
instance); availability without sharing, so every instance knows every device's presence, retained
state included (MQTT 5 sends no retained messages to shared subscriptions). ``group=""`` subscribes to
everything plainly (one instance sees all, retained status at once).

Nothing is lost on the fleet's side either: the session is persistent (clean start off, a session expiry),
so the broker queues QoS 1 events while the fleet is away, and an event is acknowledged (manual PUBACK)
only after the transaction holding it committed; a redelivery is stored once (the event id is the key).
A message that is not what the schema says is logged, counted (``rejected``) and skipped.
"""
from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events.mqtt import parse_url
from .store import FleetStore, Incoming

log = logging.getLogger("edge_app.fleet")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Broker:
    url: str
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    client_id: str = ""
    keepalive_s: int = 30
    session_expiry_s: int = 3600


@dataclass
class _Message:
    topic: str
    device: str
    kind: str          # "events", "status", "availability", "snapshot"
    rest: list[str]    # for a snapshot: [event id, "crop" | "frame"]
    payload: bytes
    mid: int
    qos: int
    generation: int    # the connection it came on: a PUBACK goes only to that one
    received: float


def event_time(text: str) -> float | None:
    """UNIX seconds of an event's UTC ISO ``time`` ("2026-12-01T10:00:00.123Z"), None if unreadable."""
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


class FleetCollector:
    def __init__(self, broker: Broker, store: FleetStore, prefix: str = "edge", group: str = "edge-fleet",
                 batch_s: float = 0.0) -> None:
        """batch_s: how long a batch waits for more messages (0: it takes what is queued; under load the
        batches grow by themselves while the previous one commits)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.broker, self.store, self.prefix, self.group, self.batch_s = broker, store, prefix.rstrip("/"), group, batch_s
        tls, self.host, self.port, user, password = parse_url(broker.url)
        import socket

        cid = broker.client_id or f"edge-fleet-{socket.gethostname()}-{group or 'all'}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
        self.client.manual_ack_set(True)
        if user:
            self.client.username_pw_set(user, password or None)
        if tls:
            self.client.tls_set(ca_certs=broker.ca_file or None, certfile=broker.cert_file or None,
                                keyfile=broker.key_file or None)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._props = Properties(PacketTypes.CONNECT)
        self._props.SessionExpiryInterval = broker.session_expiry_s
        self._props.ReceiveMaximum = 1000  # QoS 1 messages in flight to us (acked per committed batch)
        self.state, self.last_error = "connecting", ""
        self.connects = self.rejected = self.received = 0
        self._generation = 0
        self._queue: queue.Queue[_Message] = queue.Queue()
        self.lag_s: deque[float] = deque(maxlen=100_000)  # event time -> committed, of the newest events
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="fleet-writer", daemon=True)

    # -- life -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._writer.start()
        try:
            self.client.connect(self.host, self.port, keepalive=self.broker.keepalive_s, clean_start=False,
                                properties=self._props)
        except Exception as exc:  # down or unreachable: paho's loop retries with back-off
            self.state, self.last_error = "down", f"cannot connect to {self.host}:{self.port}: {exc}"
            log.warning("fleet: %s; retrying", self.last_error)
            self.client.connect_async(self.host, self.port, keepalive=self.broker.keepalive_s, clean_start=False,
                                      properties=self._props)
        self.client.loop_start()

    def topics(self) -> list[tuple[str, int]]:
        share = f"$share/{self.group}/" if self.group else ""
        p = self.prefix
        return [(f"{share}{p}/+/events", 1), (f"{share}{p}/+/status", 0), (f"{share}{p}/+/snapshot/+/+", 1),
                (f"{p}/+/availability", 1)]

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.state, self.last_error = "refused", f"the broker refused the connection: {reason}"
            log.error("fleet: %s", self.last_error)
            return
        self._generation += 1
        self.connects += 1
        self.state, self.last_error = "connected", ""
        client.subscribe(self.topics())
        log.info("fleet: connected to %s:%d (%s), session %s", self.host, self.port,
                 f"shared group {self.group!r}" if self.group else "no shared group",
                 "resumed" if flags.session_present else "new")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not self._stop.is_set():
            self.state, self.last_error = "disconnected", f"lost the broker ({reason})"
            log.warning("fleet: %s; reconnecting", self.last_error)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.received += 1
        parts = msg.topic[len(self.prefix) + 1:].split("/") if msg.topic.startswith(self.prefix + "/") else []
        ok = len(parts) >= 2 and _NAME.match(parts[0]) and (
            (parts[1] in ("events", "status", "availability") and len(parts) == 2)
            or (parts[1] == "snapshot" and len(parts) == 4 and _NAME.match(parts[2]) and parts[3] in ("crop", "frame")))
        if not ok:
            self._reject(msg.topic, "not <prefix>/<device>/events|status|availability|snapshot/<id>/<crop|frame>")
            self._ack(msg.mid, msg.qos, self._generation)
            return
        self._queue.put(_Message(msg.topic, parts[0], parts[1], parts[2:], msg.payload, msg.mid, msg.qos, self._generation,
                                 time.time()))

    def _reject(self, where: str, why: str) -> None:
        self.rejected += 1
        log.warning("fleet: skipped a message on %s: %s", where, why)

    def _ack(self, mid: int, qos: int, generation: int) -> None:
        if qos > 0 and generation == self._generation:  # the old connection's ids mean nothing now
            self.client.ack(mid, qos)

    # -- the writer thread --------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            end = time.monotonic() + self.batch_s
            while len(batch) < 2000:
                try:
                    wait = end - time.monotonic()
                    batch.append(self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Message]) -> None:
        incoming = Incoming()
        for m in batch:
            try:
                self._parse(m, incoming)
            except (ValueError, KeyError, TypeError) as exc:
                self._reject(m.topic, str(exc))
        try:
            new = self.store.write(incoming)
        except Exception:  # the database failed: nothing acknowledged, the broker sends it again
            log.exception("fleet: could not store %d messages", len(batch))
            return
        now = time.time()
        for doc in new:
            self.counts[doc["type"]] = self.counts.get(doc["type"], 0) + 1
            made = event_time(doc.get("time", ""))
            if made is not None:
                self.lag_s.append(now - made)
        for m in batch:
            self._ack(m.mid, m.qos, m.generation)

    def _parse(self, m: _Message, into: Incoming) -> None:
        """Check one message and add it to the batch (a ValueError names what is wrong)."""
        if m.kind == "availability":
            text = m.payload.decode(errors="replace").strip()
            if text not in ("online", "offline"):
                raise ValueError(f"availability {text!r}: expected online or offline")
            into.presence[m.device] = (text == "online", m.received)
            if text == "offline":
                log.info("fleet: %s went offline", m.device)
            return
        if m.kind == "snapshot":
            event_id, kind = m.rest
            if not event_id.startswith(m.device + "-"):
                raise ValueError(f"snapshot {event_id!r} is not an event of device {m.device!r}")
            if not m.payload.startswith(b"\xff\xd8"):
                raise ValueError(f"snapshot {event_id}/{kind}: not a JPEG")
            into.snapshots.append((event_id, kind, m.payload, m.received))
            return
        text = m.payload.decode()
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("expected a JSON object")
        if m.kind == "status":
            into.status[m.device] = (text, m.received)
            return
        for key in ("id", "seq", "type"):
            if key not in doc:
                raise ValueError(f"event without {key!r}")
        int(doc["seq"])
        into.events.append((m.device, doc, text, m.received))

    def describe(self) -> dict[str, Any]:
        lags = np.asarray(self.lag_s, dtype=float)
        return {"state": self.state, "broker": f"{self.host}:{self.port}", "last_error": self.last_error,
                "group": self.group, "connects": self.connects, "received": self.received, "rejected": self.rejected,
                "duplicates": self.store.duplicates, "queued": self._queue.qsize(), "events": dict(self.counts),
                "lag_ms": {"p50": round(float(np.percentile(lags, 50)) * 1000, 1),
                           "p99": round(float(np.percentile(lags, 99)) * 1000, 1)} if lags.size else None}

    @property
    def alive(self) -> bool:
        return self._writer.is_alive()

    def close(self) -> None:
        self._stop.set()
        self._writer.join(5)
        self.client.disconnect()
        self.client.loop_stop()
