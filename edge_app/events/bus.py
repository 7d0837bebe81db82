"""The event bus of a device: numbers each event (persistent sequence), saves track snapshots, and hands
the event to its sinks: the durable outbox for MQTT (events, then snapshots on their own topics) and the
JSON-lines file. ``emit`` is quick (a SQLite insert in WAL mode, a JPEG per finished track) and never
waits on the network: the MQTT thread sends from the outbox.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .outbox import Outbox
from .schema import make_event
from .snapshots import SnapshotStore

log = logging.getLogger("edge_app.events")


class JsonLinesSink:
    """Every event as one line, appended and flushed (rotated to ``.1`` beyond ``max_bytes``)."""

    def __init__(self, path: Path, max_bytes: int = 50 * 2**20) -> None:
        self.path, self.max_bytes = Path(path), max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, default=str) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            if self._fh.tell() > self.max_bytes:
                self._fh.close()
                self.path.replace(self.path.with_name(self.path.name + ".1"))
                self._fh = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class EventBus:
    def __init__(self, device: str, stream: str, outbox: Outbox, topic_prefix: str | None = None,
                 jsonl: JsonLinesSink | None = None, snapshots: SnapshotStore | None = None) -> None:
        """topic_prefix: "<prefix>/<device>" for MQTT (None: no MQTT, events only go to the file)."""
        self.device, self.stream, self.outbox = device, stream, outbox
        self.prefix, self.jsonl, self.snapshots = topic_prefix, jsonl, snapshots
        self.counts: dict[str, int] = {}
        self.errors = 0
        # The pipeline thread (track events) and the main loop (counts, status changes) both emit: the
        # number and the outbox insert happen under one lock, so the outbox order is the sequence order.
        self._lock = threading.Lock()

    def emit(self, kind: str, snapshot: tuple[np.ndarray, np.ndarray] | None = None, **fields: Any) -> dict[str, Any]:
        """One event; ``snapshot`` = (frame (H, W, 3), box xyxy) of a track event, saved as JPEGs;
        ``stream=NAME`` among the fields: the event's stream (default: the bus's)."""
        with self._lock:
            return self._emit(kind, snapshot, fields)

    def _emit(self, kind: str, snapshot: tuple[np.ndarray, np.ndarray] | None, fields: dict[str, Any]) -> dict[str, Any]:
        stream = fields.pop("stream", None) or self.stream  # the stream the event is of (several cameras)
        event = make_event(kind, self.outbox.next_seq(), self.device, stream, **fields)
        if snapshot is not None and self.snapshots is not None:
            try:
                event["snapshot"] = self.snapshots.save(event["id"], snapshot[0], snapshot[1])
            except (OSError, ValueError) as exc:  # a full disk loses the picture, never the event
                self.errors += 1
                log.warning("events: snapshot of %s not saved: %s", event["id"], exc)
        payload = json.dumps(event, default=_plain).encode()
        if self.prefix is not None:
            self.outbox.put(f"{self.prefix}/events", payload, qos=1)
            for part, path in event.get("snapshot", {}).items():
                self.outbox.put(f"{self.prefix}/snapshot/{event['id']}/{part}", file=path, qos=1)
        if self.jsonl is not None:
            self.jsonl.write(json.loads(payload))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return event

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
