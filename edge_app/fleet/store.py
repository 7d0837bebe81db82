"""The fleet's memory (SQLite, WAL): each device's presence (from its retained ``availability`` and Last
Will), its last status, and its recent events with their snapshots (JPEG blobs, under a byte cap).

Events are keyed by their id ("<device>-<seq>"): the at-least-once redeliveries of MQTT land on the row
that is already there, so every event is stored exactly once. Per device only the newest ``keep_events``
are kept (with their snapshots); a device's totals (``events``, ``last_seq``) count all of them.

One writer (the collector's thread) writes a whole ``Incoming`` batch in one transaction with a handful
of statements: each statement releases the GIL, and under load the MQTT thread makes every re-acquire
cost up to a switch interval (5 ms), so statements per message, not bytes, set the fleet's throughput.
The web threads read through the same connection under a lock.

Rollouts (``fleet.rollouts``) live here too, one row per rollout with its document as JSON, so a fleet
restarted (or another instance on the same PostgreSQL store) carries on with them; ``update_rollout``
changes one in a transaction of its own.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS devices (device TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, "
    "presence_at REAL, status TEXT, status_at REAL, last_seen REAL, events INTEGER NOT NULL DEFAULT 0, "
    "last_seq INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL, "
    "type TEXT NOT NULL, time TEXT, body TEXT NOT NULL, received REAL NOT NULL, stored REAL)",
    "CREATE INDEX IF NOT EXISTS events_by_device ON events (device, seq)",
    "CREATE INDEX IF NOT EXISTS events_by_arrival ON events (received)",
    "CREATE TABLE IF NOT EXISTS snapshots (event_id TEXT NOT NULL, kind TEXT NOT NULL, jpeg BLOB NOT NULL, "
    "received REAL NOT NULL, PRIMARY KEY (event_id, kind))",
    "CREATE INDEX IF NOT EXISTS snapshots_by_arrival ON snapshots (received)",
    "CREATE TABLE IF NOT EXISTS rollouts (id TEXT PRIMARY KEY, state TEXT NOT NULL, created REAL NOT NULL, "
    "updated REAL, body TEXT NOT NULL)",
)
RolloutChange = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass
class Incoming:
    """What one batch of messages says, checked (the collector parses; the store only writes)."""
    presence: dict[str, tuple[bool, float]] = field(default_factory=dict)   # device -> (online, at): the last
    status: dict[str, tuple[str, float]] = field(default_factory=dict)      # device -> (JSON text, at): the last
    events: list[tuple[str, dict[str, Any], str, float]] = field(default_factory=list)  # device, doc, JSON, at
    snapshots: list[tuple[str, str, bytes, float]] = field(default_factory=list)  # event id, kind, JPEG, at

    def __len__(self) -> int:
        return len(self.presence) + len(self.status) + len(self.events) + len(self.snapshots)

    def last_seen(self) -> list[tuple[str, float]]:
        """(device, newest time) of every device the batch heard from, sorted by device: two instances
        writing one database lock the device rows in the same order (no deadlock)."""
        seen: dict[str, float] = {}
        heard = [(d, at) for d, (_, at) in self.presence.items()] + [(d, at) for d, (_, at) in self.status.items()]
        heard += [(d, at) for d, _, _, at in self.events]
        heard += [(event_id.rsplit("-", 1)[0], at) for event_id, _, _, at in self.snapshots]
        for device, at in heard:
            seen[device] = max(seen.get(device, 0.0), at)
        return sorted(seen.items())


class FleetStore:
    TRANSIENT = (sqlite3.OperationalError,)  # the database cannot write now (disk full, locked): retry the batch

    def __init__(self, path: Path, keep_events: int = 200, snapshot_bytes: int = 500 * 2**20,
                 prune_every_s: float = 2.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keep_events, self.snapshot_bytes, self.prune_every_s = keep_events, snapshot_bytes, prune_every_s
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._snap_bytes = int(self._db.execute("SELECT COALESCE(SUM(LENGTH(jpeg)), 0) FROM snapshots").fetchone()[0])
        self._touched: set[str] = set()
        self._pruned_at = 0.0
        self.duplicates = 0

    # -- writing (one thread) -----------------------------------------------------------------------
    def write(self, batch: Incoming) -> list[dict[str, Any]]:
        """Store a batch in one transaction; returns the events that were new (not redeliveries)."""
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                new = self._events(db, batch.events, now)
                db.executemany("INSERT INTO devices (device, last_seen) VALUES (?, ?) ON CONFLICT(device) DO UPDATE "
                               "SET last_seen = MAX(COALESCE(last_seen, 0), excluded.last_seen)", batch.last_seen())
                db.executemany("UPDATE devices SET online = ?, presence_at = ? WHERE device = ?",
                               [(int(on), at, d) for d, (on, at) in batch.presence.items()])
                db.executemany("UPDATE devices SET status = ?, status_at = ? WHERE device = ?",
                               [(text, at, d) for d, (text, at) in batch.status.items()])
                totals: dict[str, list[int]] = {}
                for device, doc in new:
                    t = totals.setdefault(device, [0, 0])
                    t[0] += 1
                    t[1] = max(t[1], int(doc["seq"]))
                db.executemany("UPDATE devices SET events = events + ?, last_seq = MAX(last_seq, ?) WHERE device = ?",
                               [(n, seq, d) for d, (n, seq) in totals.items()])
                if batch.snapshots:
                    db.executemany("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)", batch.snapshots)
                    self._snap_bytes += sum(len(s[2]) for s in batch.snapshots)
                self._touched.update(totals)
                self._prune(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return [doc for _, doc in new]

    def _events(self, db: sqlite3.Connection, events: list[tuple[str, dict[str, Any], str, float]],
                now: float) -> list[tuple[str, dict[str, Any]]]:
        if not events:
            return []
        ids = list({str(doc["id"]) for _, doc, _, _ in events})
        known: set[str] = set()
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            known.update(r[0] for r in db.execute(f"SELECT id FROM events WHERE id IN ({','.join('?' * len(part))})",
                                                  part))
        rows, new = [], []
        for device, doc, text, at in events:
            eid = str(doc["id"])
            if eid in known:
                self.duplicates += 1
                continue
            known.add(eid)
            rows.append((eid, device, int(doc["seq"]), str(doc["type"]), doc.get("time"), text, at, now))
            new.append((device, doc))
        db.executemany("INSERT INTO events (id, device, seq, type, time, body, received, stored) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return new

    def _prune(self, db: sqlite3.Connection) -> None:
        # Every few seconds, not every batch: a query per device that got events since the last prune.
        now = time.monotonic()
        if now - self._pruned_at < self.prune_every_s:
            return
        self._pruned_at = now
        for device in self._touched:
            old = [r[0] for r in db.execute("SELECT id FROM events WHERE device = ? ORDER BY seq DESC LIMIT -1 "
                                            "OFFSET ?", (device, self.keep_events))]
            for i in range(0, len(old), 500):
                part = old[i:i + 500]
                marks = ",".join("?" * len(part))
                gone = db.execute(f"SELECT COALESCE(SUM(LENGTH(jpeg)), 0) FROM snapshots WHERE event_id IN ({marks})",
                                  part).fetchone()[0]
                db.execute(f"DELETE FROM snapshots WHERE event_id IN ({marks})", part)
                db.execute(f"DELETE FROM events WHERE id IN ({marks})", part)
                self._snap_bytes -= int(gone)
        self._touched.clear()
        while self._snap_bytes > self.snapshot_bytes:  # the byte cap: the oldest snapshots go first
            rows = db.execute("SELECT event_id, kind, LENGTH(jpeg) FROM snapshots ORDER BY received LIMIT 200").fetchall()
            if not rows:
                break
            cut = []
            for eid, kind, size in rows:
                if self._snap_bytes <= self.snapshot_bytes * 0.9:
                    break
                cut.append((eid, kind))
                self._snap_bytes -= int(size)
            db.executemany("DELETE FROM snapshots WHERE event_id = ? AND kind = ?", cut)

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

    def snapshot(self, event_id: str, kind: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT jpeg FROM snapshots WHERE event_id = ? AND kind = ?",
                                   (event_id, kind)).fetchone()
        return bytes(row[0]) if row else None

    # -- rollouts ------------------------------------------------------------------------------------
    def rollouts(self) -> list[dict[str, Any]]:
        """Every rollout's document, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM rollouts ORDER BY created DESC").fetchall()
        return [json.loads(r[0]) for r in rows]

    def add_rollout(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT INTO rollouts (id, state, created, updated, body) VALUES (?, ?, ?, ?, ?)",
                             (doc["id"], doc["state"], doc["created"], time.time(), json.dumps(doc, sort_keys=True)))

    def update_rollout(self, rid: str, change: RolloutChange) -> dict[str, Any] | None:
        """``change(doc)`` -> the new document (written in the same transaction) or None (unchanged)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT body FROM rollouts WHERE id = ?", (rid,)).fetchone()
                new = change(json.loads(row[0])) if row else None
                if new is not None:
                    db.execute("UPDATE rollouts SET state = ?, updated = ?, body = ? WHERE id = ?",
                               (new["state"], time.time(), json.dumps(new, sort_keys=True), rid))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return new

    def close(self) -> None:
        with self._lock:
            self._db.close()
