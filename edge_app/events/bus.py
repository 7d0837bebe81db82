"""The event bus of a device: checks each event against the schema, numbers it (persistent sequence),
saves track snapshots, and hands the event to its sinks: the durable outbox for MQTT (events, then
snapshots on their own topics) and the JSON-lines file. ``emit`` is quick (a SQLite insert in WAL mode, a
JPEG per finished track) and never waits on the network: the MQTT thread sends from the outbox.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from . import schema
from .outbox import Message, Outbox
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
    """Numbers and keeps events in order. ``emit`` never loses one and never leaves a gap: an event the
    disk cannot take now waits in memory, unnumbered, in order, and is written by the next ``emit`` or
    ``retry`` (the number is given when it is stored, in the same transaction). ``waiting`` > 0 and
    ``write_error`` say so (the device's health turns degraded with it)."""

    KEEP_PICTURES = 4  # waiting events beyond this many lose their snapshot frame (memory), never the event

    def __init__(self, device: str, stream: str, outbox: Outbox, topic_prefix: str | None = None,
                 jsonl: JsonLinesSink | None = None, snapshots: SnapshotStore | None = None) -> None:
        """topic_prefix: "<prefix>/<device>" for MQTT (None: no MQTT, events only go to the file)."""
        self.device, self.stream, self.outbox = device, stream, outbox
        self.prefix, self.jsonl, self.snapshots = topic_prefix, jsonl, snapshots
        self.counts: dict[str, int] = {}
        self.errors = 0
        self.write_error = ""     # why the oldest waiting event could not be stored ("" when none waits)
        self.jsonl_error = ""
        self._waiting: deque[tuple[str, str, dict[str, Any], tuple[np.ndarray, np.ndarray] | None]] = deque()
        self._failed_at = 0.0
        # The pipeline thread (track events) and the main loop (counts, status changes) both emit: the
        # number and the outbox insert happen under one lock, so the outbox order is the sequence order.
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def emit(self, kind: str, snapshot: tuple[np.ndarray, np.ndarray] | None = None,
             **fields: Any) -> dict[str, Any] | None:
        """One event; ``snapshot`` = (frame (H, W, 3), box xyxy) of a track event, saved as JPEGs;
        ``stream=NAME`` among the fields: the event's stream (default: the bus's). Returns the stored
        event, or None when it waits for the disk. A field the schema refuses is a ValueError (a bug of
        the caller: nothing is numbered)."""
        stream = fields.pop("stream", None) or self.stream  # the stream the event is of (several cameras)
        fields = json.loads(json.dumps(fields, default=_plain))  # numpy scalars -> JSON's own types
        try:  # checked before it is numbered: the fleet runs the same check, a bug never reaches it
            schema.validate_event(schema.make_event(kind, 1, self.device, stream, **fields))
        except schema.SchemaError as exc:
            raise ValueError(f"event {kind}: {exc}") from None
        with self._lock:
            self._waiting.append((kind, stream, fields, snapshot))
            if len(self._waiting) > self.KEEP_PICTURES:  # keep memory bounded while the disk is full
                k, st, f, _ = self._waiting[-self.KEEP_PICTURES - 1]
                self._waiting[-self.KEEP_PICTURES - 1] = (k, st, f, None)
            return self._drain()

    def retry(self) -> None:
        """Store what waits (the main loop calls this, so waiting events go out without a new one)."""
        if self._waiting:
            with self._lock:
                self._drain()

    def _drain(self) -> dict[str, Any] | None:
        event = None
        while self._waiting:
            kind, stream, fields, snapshot = self._waiting[0]
            try:
                event = self.outbox.add(lambda seq: self._build(seq, kind, stream, fields, snapshot))
            except (OSError, sqlite3.OperationalError) as exc:
                if not self.write_error or time.monotonic() - self._failed_at > 60:
                    log.error("events: cannot store events (%s); %d waiting in memory, retrying", exc,
                              len(self._waiting))
                    self._failed_at = time.monotonic()
                self.write_error = str(exc)
                return None
            self._waiting.popleft()
            if self.write_error:
                log.warning("events: stored again after '%s'", self.write_error)
                self.write_error = ""
            self._to_file(event)
            self.counts[kind] = self.counts.get(kind, 0) + 1
        return event

    def _build(self, seq: int, kind: str, stream: str, fields: dict[str, Any],
               snapshot: tuple[np.ndarray, np.ndarray] | None) -> tuple[dict[str, Any], list[Message]]:
        event = schema.make_event(kind, seq, self.device, stream, **fields)
        if snapshot is not None and self.snapshots is not None:
            try:
                event["snapshot"] = self.snapshots.save(event["id"], snapshot[0], snapshot[1])
            except (OSError, ValueError) as exc:  # a full disk loses the picture, never the event
                self.errors += 1
                log.warning("events: snapshot of %s not saved: %s", event["id"], exc)
        messages: list[Message] = []
        if self.prefix is not None:
            messages.append((f"{self.prefix}/events", json.dumps(event).encode(), None))
            for part, path in event.get("snapshot", {}).items():
                messages.append((f"{self.prefix}/snapshot/{event['id']}/{part}", None, path))
        return event, messages

    def _to_file(self, event: dict[str, Any]) -> None:
        if self.jsonl is None:
            return
        try:
            self.jsonl.write(event)
            self.jsonl_error = ""
        except OSError as exc:  # the outbox has the event; the file misses a line, said in the health
            self.errors += 1
            self.jsonl_error = str(exc)

    def close(self) -> None:
        self.retry()
        if self._waiting:
            log.error("events: %d events could not be stored before the stop (%s)", len(self._waiting),
                      self.write_error)
        if self.jsonl is not None:
            self.jsonl.close()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
