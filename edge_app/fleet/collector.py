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

Nothing a peer sends can stop the fleet: every message is checked by the event schema
(``events.schema``, the device's own validator) before it touches the store: sizes per kind, depth,
integers in range, finite numbers, the fields of its type, and identity (the topic's device must be the
event's ``device`` and its id's prefix: a device speaks only for itself). A message refused is logged with
its topic and reason, counted (``rejected{reason}``), acknowledged and dropped, alone; the rest of its
batch is stored. Should the database still refuse a row, the batch is written message by message and only
the refused one is rejected; a database that cannot write at all (disk full) keeps the batch and retries
it, unacknowledged, so the writer thread never dies of data and never drops a good message.
"""
from __future__ import annotations

import logging
import queue
import re
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events import schema
from ..core.uri import parse_url
from .store import FleetStore, Incoming

log = logging.getLogger("edge_app.fleet")
_EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,160}$")


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
        self.connects = self.received = 0
        self.rejected: dict[str, int] = {}   # reason -> messages refused
        self._logged: dict[str, tuple[float, int]] = {}  # reason -> (window start, lines logged in it)
        self.store_error = ""  # why the last batch could not be written (the database), "" when fine
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
        ok = len(parts) >= 2 and schema.NAME.match(parts[0]) and (
            (parts[1] in ("events", "status", "availability") and len(parts) == 2)
            or (parts[1] == "snapshot" and len(parts) == 4 and _EVENT_ID.match(parts[2]) and parts[3] in ("crop", "frame")))
        if not ok:
            self._reject(msg.topic[:200], "not <prefix>/<device>/events|status|availability|snapshot/<id>/<crop|frame>")
            self._ack(msg.mid, msg.qos, self._generation)
            return
        self._queue.put(_Message(msg.topic, parts[0], parts[1], parts[2:], msg.payload, msg.mid, msg.qos, self._generation,
                                 time.time()))

    def _reject(self, where: str, why: str, reason: str = "topic") -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        # A hostile peer can send thousands a second: at most 20 lines a minute per reason reach the log.
        start, n = self._logged.get(reason, (0.0, 0))
        now = time.monotonic()
        if now - start > 60:
            if n > 20:
                log.warning("fleet: %d more messages refused for %s in the last minute", n - 20, reason)
            start, n = now, 0
        if n < 20:
            log.warning("fleet: refused a message on %s (%s): %s", where, reason, why)
        self._logged[reason] = (start, n + 1)

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
            try:
                self._write(batch)
            except Exception:  # a bug must not stop the fleet: the batch stays unacknowledged (redelivered)
                log.exception("fleet: could not handle a batch of %d messages", len(batch))

    def _write(self, batch: list[_Message]) -> None:
        incoming, good = Incoming(), []
        for m in batch:
            try:
                self._parse(m, incoming)
                good.append(m)
            except schema.SchemaError as exc:
                self._reject(m.topic, str(exc), exc.reason)
                self._ack(m.mid, m.qos, m.generation)
        new = self._store(incoming, good)
        now = time.time()
        for doc in new:
            self.counts[doc["type"]] = self.counts.get(doc["type"], 0) + 1
            made = schema.event_time(doc.get("time", ""))
            if made is not None:
                self.lag_s.append(now - made)

    def _store(self, incoming: Incoming, messages: list[_Message]) -> list[dict[str, Any]]:
        """Write a checked batch and acknowledge it. The database refusing a row (what the schema let
        through but SQLite will not take) costs that message only: the batch is written one by one. A
        database that cannot write (disk full, I/O) keeps the batch: retried with back-off, not acked."""
        delay = 0.5
        while True:
            try:
                new = self.store.write(incoming)
                break
            except getattr(self.store, "TRANSIENT", (sqlite3.OperationalError,)) as exc:  # the database, not the data
                self.store_error = f"the store cannot write: {exc}"
                log.error("fleet: %s; %d messages kept, retrying in %.1f s", self.store_error, len(messages), delay)
                if self._stop.wait(delay):
                    return []
                delay = min(delay * 2, 10.0)
            except Exception as exc:
                if len(messages) == 1:
                    m = messages[0]
                    self._reject(m.topic, f"the store refused it: {exc}", "store")
                    self._ack(m.mid, m.qos, m.generation)
                    return []
                new = []
                for m in messages:  # isolate the row the database refuses
                    one = Incoming()
                    self._parse(m, one)
                    new += self._store(one, [m])
                return new
        self.store_error = ""
        for m in messages:
            self._ack(m.mid, m.qos, m.generation)
        return new

    def _parse(self, m: _Message, into: Incoming) -> None:
        """Check one message (``events.schema``) and add it to the batch; a SchemaError says why not."""
        if m.kind == "availability":
            text = m.payload[:16].decode(errors="replace").strip()
            if text not in ("online", "offline") or len(m.payload) > 16:
                raise schema.SchemaError("bad_field", f"availability {text!r}: expected online or offline")
            into.presence[m.device] = (text == "online", m.received)
            if text == "offline":
                log.info("fleet: %s went offline", m.device)
            return
        if m.kind == "snapshot":
            event_id, kind = m.rest
            schema.validate_snapshot(m.payload, event_id, m.device)
            into.snapshots.append((event_id, kind, m.payload, m.received))
            return
        if m.kind == "status":
            schema.validate_status(schema.loads(m.payload, "status"), m.device)
            into.status[m.device] = (m.payload.decode(), m.received)
            return
        doc = schema.validate_event(schema.loads(m.payload, "event"), m.device)
        into.events.append((m.device, doc, m.payload.decode(), m.received))

    def describe(self) -> dict[str, Any]:
        lags = np.asarray(self.lag_s, dtype=float)
        return {"state": self.state, "broker": f"{self.host}:{self.port}", "last_error": self.last_error,
                "group": self.group, "connects": self.connects, "received": self.received,
                "rejected": sum(self.rejected.values()), "rejected_by": dict(self.rejected), "store_error": self.store_error,
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
