"""The fleet's memory (SQLite, WAL): each device's presence (from its retained ``availability`` and Last
Will), its last status, and its recent events with their snapshots.

Events are keyed by their id ("<device>-<seq>"): the at-least-once redeliveries of MQTT land on the row
that is already there, so every event is stored exactly once. Per device only the newest ``keep_events``
are kept (with their snapshots); a device's totals (``events``, ``last_seq``) count all of them. One writer
(the collector's thread) writes in batches; the web threads read through the same connection under a lock.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..events.snapshots import SnapshotStore

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS devices (device TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, "
    "presence_at REAL, status TEXT, status_at REAL, last_seen REAL, events INTEGER NOT NULL DEFAULT 0, "
    "last_seq INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL, "
    "type TEXT NOT NULL, time TEXT, body TEXT NOT NULL, received REAL NOT NULL, stored REAL)",
    "CREATE INDEX IF NOT EXISTS events_by_device ON events (device, seq)",
    "CREATE INDEX IF NOT EXISTS events_by_arrival ON events (received)",
    "CREATE TABLE IF NOT EXISTS snapshots (event_id TEXT NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, "
    "PRIMARY KEY (event_id, kind))",
)


class FleetStore:
    def __init__(self, path: Path, snapshots: SnapshotStore | None = None, keep_events: int = 200) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.snapshots = snapshots or SnapshotStore(self.path.parent / "snapshots")
        self.keep_events = keep_events
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._touched: set[str] = set()
        self.duplicates = 0

    # -- writing (one thread) -----------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for many messages (a commit per message would cap the fleet at ~1,000/s)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
                self._prune()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _device(self, device: str, now: float) -> None:
        self._db.execute("INSERT INTO devices (device, last_seen) VALUES (?, ?) ON CONFLICT(device) DO UPDATE "
                         "SET last_seen = excluded.last_seen", (device, now))

    def presence(self, device: str, online: bool, now: float) -> None:
        self._device(device, now)
        self._db.execute("UPDATE devices SET online = ?, presence_at = ? WHERE device = ?", (int(online), now, device))

    def status(self, device: str, status: dict[str, Any], now: float) -> None:
        self._device(device, now)
        self._db.execute("UPDATE devices SET status = ?, status_at = ? WHERE device = ?",
                         (json.dumps(status), now, device))

    def event(self, device: str, event: dict[str, Any], received: float) -> bool:
        """Store one event; False when its id was stored before (a redelivery)."""
        self._device(device, received)
        cur = self._db.execute("INSERT OR IGNORE INTO events (id, device, seq, type, time, body, received, stored) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (str(event["id"]), device, int(event["seq"]), str(event["type"]), event.get("time"),
                                json.dumps(event), received, time.time()))
        if cur.rowcount == 0:
            self.duplicates += 1
            return False
        self._db.execute("UPDATE devices SET events = events + 1, last_seq = MAX(last_seq, ?) WHERE device = ?",
                         (int(event["seq"]), device))
        self._touched.add(device)
        return True

    def snapshot(self, device: str, event_id: str, kind: str, data: bytes, now: float) -> None:
        if not event_id.startswith(device + "-"):
            raise ValueError(f"snapshot {event_id!r} is not an event of device {device!r}")
        path = self.snapshots.store(event_id, kind, data)
        self._device(device, now)
        self._db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (event_id, kind, str(path)))

    def _prune(self) -> None:
        # Only devices that got events in this batch can be over their cap.
        for device in self._touched:
            old = self._db.execute("SELECT id FROM events WHERE device = ? ORDER BY seq DESC LIMIT -1 OFFSET ?",
                                   (device, self.keep_events)).fetchall()
            if not old:
                continue
            ids = [r[0] for r in old]
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                marks = ",".join("?" * len(part))
                for (path,) in self._db.execute(f"SELECT path FROM snapshots WHERE event_id IN ({marks})", part):
                    Path(path).unlink(missing_ok=True)
                self._db.execute(f"DELETE FROM snapshots WHERE event_id IN ({marks})", part)
                self._db.execute(f"DELETE FROM events WHERE id IN ({marks})", part)
        self._touched.clear()

    # -- reading (web threads) ----------------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        """Every device seen: name, online, presence_at / status_at / last_seen (UNIX s), status, totals."""
        with self._lock:
            rows = self._db.execute("SELECT device, online, presence_at, status, status_at, last_seen, events, "
                                    "last_seq FROM devices ORDER BY device").fetchall()
        return [{"device": d, "online": bool(o), "presence_at": p, "status": json.loads(s) if s else None,
                 "status_at": sa, "last_seen": ls, "events": n, "last_seq": q} for d, o, p, s, sa, ls, n, q in rows]

    def recent_events(self, limit: int = 50, device: str | None = None) -> list[dict[str, Any]]:
        """The newest events (by arrival), each with ``snapshots`` {kind: URL path} of what arrived."""
        where, args = ("WHERE device = ?", [device]) if device else ("", [])
        with self._lock:
            rows = self._db.execute(f"SELECT id, body, received FROM events {where} ORDER BY received DESC, seq DESC "
                                    "LIMIT ?", [*args, limit]).fetchall()
            kinds: dict[str, list[str]] = {}
            if rows:
                marks = ",".join("?" * len(rows))
                for eid, kind in self._db.execute(f"SELECT event_id, kind FROM snapshots WHERE event_id IN ({marks})",
                                                  [r[0] for r in rows]):
                    kinds.setdefault(eid, []).append(kind)
        out = []
        for eid, body, received in rows:
            e = json.loads(body)
            e.pop("snapshot", None)  # the device's own paths mean nothing here
            e["received"] = received
            e["snapshots"] = {k: f"snapshot/{eid}/{k}" for k in sorted(kinds.get(eid, []))}
            out.append(e)
        return out

    def event_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM events")}

    def snapshot_path(self, event_id: str, kind: str) -> Path | None:
        with self._lock:
            row = self._db.execute("SELECT path FROM snapshots WHERE event_id = ? AND kind = ?",
                                   (event_id, kind)).fetchone()
        return Path(row[0]) if row and Path(row[0]).is_file() else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
