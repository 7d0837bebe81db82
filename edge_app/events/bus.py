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
    """Numbers and keeps events in order, off the threads that emit them.

    ``emit`` checks an event against the schema and queues it (a bounded queue; a full one makes the
    emitter wait, it never drops); one writer thread numbers it, saves its snapshot JPEGs and stores it
    in the outbox, so neither JPEG encoding nor SQLite run on the inference thread. The number is given
    when the event is stored, in the same transaction: an event the disk cannot take now stays queued,
    unnumbered, in order, and is retried (``write_error`` says why; the device's health turns degraded),
    so the sequence never has a gap. ``close`` (SIGTERM) drains the queue first: nothing queued is lost.
    ``writer=False``: stored by ``emit`` itself (tools, and the benchmark's baseline)."""

    KEEP_PICTURES = 64  # queued events beyond this many lose their snapshot frame (memory), never the event

    def __init__(self, device: str, stream: str, outbox: Outbox, topic_prefix: str | None = None,
                 jsonl: JsonLinesSink | None = None, snapshots: SnapshotStore | None = None, *,
                 writer: bool = True, max_queue: int = 10_000) -> None:
        """topic_prefix: "<prefix>/<device>" for MQTT (None: no MQTT, events only go to the file)."""
        self.device, self.stream, self.outbox = device, stream, outbox
        self.prefix, self.jsonl, self.snapshots = topic_prefix, jsonl, snapshots
        self.counts: dict[str, int] = {}
        self.errors = 0
        self.write_error = ""     # why the oldest queued event could not be stored ("" when it could)
        self.jsonl_error = ""
        self.max_queue = max_queue
        self._waiting: deque[tuple[str, str, dict[str, Any], tuple[np.ndarray, np.ndarray] | None]] = deque()
        self._failed_at = 0.0
        self._queue = threading.Condition()   # guards _waiting; the writer waits on it
        self._lock = threading.Lock()         # one drainer at a time: number + insert in queue order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if writer:
            self._thread = threading.Thread(target=self._write_loop, name="events-writer", daemon=True)
            self._thread.start()

    @property
    def waiting(self) -> int:
        """Events queued, not stored yet (a handful normally; more while the disk refuses)."""
        return len(self._waiting)

    def emit(self, kind: str, snapshot: tuple[np.ndarray, np.ndarray] | None = None,
             **fields: Any) -> dict[str, Any] | None:
        """One event; ``snapshot`` = (frame (H, W, 3), box xyxy) of a track event, saved as JPEGs;
        ``stream=NAME`` among the fields: the event's stream (default: the bus's). Queued for the writer
        (returns None), or without a writer stored at once (returns it; None while the disk refuses). A
        field the schema refuses is a ValueError (a bug of the caller: nothing is queued or numbered)."""
        stream = fields.pop("stream", None) or self.stream  # the stream the event is of (several cameras)
        fields = json.loads(json.dumps(fields, default=_plain))  # numpy scalars -> JSON's own types
        try:  # checked before it is numbered: the fleet runs the same check, a bug never reaches it
            schema.validate_event(schema.make_event(kind, 1, self.device, stream, **fields))
        except schema.SchemaError as exc:
            raise ValueError(f"event {kind}: {exc}") from None
        with self._queue:
            while len(self._waiting) >= self.max_queue and self._thread is not None and not self._stop.is_set():
                self._queue.wait(0.5)  # back-pressure: the emitter waits, nothing is dropped
            self._waiting.append((kind, stream, fields, snapshot))
            if len(self._waiting) > self.KEEP_PICTURES:  # keep memory bounded while the disk is full
                k, st, f, _ = self._waiting[-self.KEEP_PICTURES - 1]
                self._waiting[-self.KEEP_PICTURES - 1] = (k, st, f, None)
            self._queue.notify_all()
        if self._thread is None:
            with self._lock:
                return self._drain()
        return None

    def retry(self) -> None:
        """Store what waits (the main loop calls this: queued events go out without a new one)."""
        if self._thread is not None:
            with self._queue:
                self._queue.notify_all()
        elif self._waiting:
            with self._lock:
                self._drain()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event is stored (tests, shutdown); False if some still wait."""
        end = time.monotonic() + timeout
        with self._queue:
            while self._waiting and time.monotonic() < end:
                self._queue.notify_all()
                self._queue.wait(0.05)
            return not self._waiting

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            with self._queue:
                if not self._waiting:
                    self._queue.wait(0.5)
            with self._lock:
                stored = self._drain() is not None or not self._waiting
            if not stored:  # the disk refuses: wait before the next try (or a new event)
                self._stop.wait(0.5)

    def _drain(self) -> dict[str, Any] | None:
        event = None
        while True:
            with self._queue:
                if not self._waiting:
                    return event
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
            with self._queue:
                self._waiting.popleft()
                self._queue.notify_all()
            if self.write_error:
                log.warning("events: stored again after '%s'", self.write_error)
                self.write_error = ""
            self._to_file(event)
            self.counts[kind] = self.counts.get(kind, 0) + 1

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

    def close(self, timeout: float = 5.0) -> None:
        """Store what is queued (SIGTERM loses nothing the disk can take), then stop the writer."""
        self.flush(timeout)
        self._stop.set()
        with self._queue:
            self._queue.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            self._drain()
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
