"""The fleet's shared store: PostgreSQL behind the ``FleetStore`` interface (``edge-app fleet --store
postgresql://user:pass@host/db``), so several fleet instances in one MQTT shared-subscription group write
their share of the messages into one database and every instance's page shows the whole fleet.

Same rules as the SQLite store: an event's id is its key (``INSERT ... ON CONFLICT DO NOTHING RETURNING``:
a redelivery, to this instance or another, is stored once, and only new rows count in a device's totals,
which are updated with ``events = events + n`` so concurrent instances add up); a batch is one
transaction; per device only the newest ``keep_events`` are kept; snapshots under a byte cap. Presence
and status take the newest by time (``GREATEST``), whichever instance wrote last. Needs psycopg 3 (the
``fleet`` extra); a database that cannot be reached or write is ``psycopg.OperationalError``, which the
collector treats as the SQLite store's "cannot write": the batch is kept, unacknowledged, and retried.
Rollouts are rows too: every instance sees them, and ``update_rollout`` locks the row (``FOR UPDATE SKIP
LOCKED``), so one instance at a time moves a rollout on and the others skip it for that tick.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any

from .store import Incoming, RolloutChange

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS devices (device TEXT PRIMARY KEY, online BOOLEAN NOT NULL DEFAULT FALSE, "
    "presence_at DOUBLE PRECISION, status TEXT, status_at DOUBLE PRECISION, last_seen DOUBLE PRECISION, "
    "events BIGINT NOT NULL DEFAULT 0, last_seq BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, device TEXT NOT NULL, seq BIGINT NOT NULL, "
    "type TEXT NOT NULL, time TEXT, body TEXT NOT NULL, received DOUBLE PRECISION NOT NULL, stored DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS events_by_device ON events (device, seq)",
    "CREATE INDEX IF NOT EXISTS events_by_arrival ON events (received)",
    "CREATE TABLE IF NOT EXISTS snapshots (event_id TEXT NOT NULL, kind TEXT NOT NULL, jpeg BYTEA NOT NULL, "
    "received DOUBLE PRECISION NOT NULL, PRIMARY KEY (event_id, kind))",
    "CREATE INDEX IF NOT EXISTS snapshots_by_arrival ON snapshots (received)",
    "CREATE TABLE IF NOT EXISTS rollouts (id TEXT PRIMARY KEY, state TEXT NOT NULL, created DOUBLE PRECISION NOT "
    "NULL, updated DOUBLE PRECISION, body TEXT NOT NULL)",
)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise RuntimeError("--store postgresql://... needs psycopg 3: pip install -e '.[fleet]'") from None
    return psycopg


class PgFleetStore:
    def __init__(self, url: str, keep_events: int = 200, snapshot_bytes: int = 500 * 2**20,
                 prune_every_s: float = 2.0) -> None:
        psycopg = _psycopg()
        self.url, self.keep_events, self.snapshot_bytes, self.prune_every_s = url, keep_events, snapshot_bytes, prune_every_s
        self.TRANSIENT = (psycopg.OperationalError,)  # the database, not the data: the collector retries
        self._lock = threading.RLock()
        self._write = psycopg.connect(url, autocommit=False)  # the writer's; readers share another
        self._read = psycopg.connect(url, autocommit=True)
        with self._lock, self._write.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(4242)")  # instances starting together create the schema once
            for statement in _SCHEMA:
                cur.execute(statement)
            self._write.commit()
        self._touched: set[str] = set()
        self._pruned_at = 0.0
        self.duplicates = 0

    def _reconnect(self) -> None:
        psycopg = _psycopg()
        try:
            self._write.close()
        except Exception:
            pass
        self._write = psycopg.connect(self.url, autocommit=False)

    # -- writing (one thread per instance) --------------------------------------------------------------
    def write(self, batch: Incoming) -> list[dict[str, Any]]:
        """The batch in one transaction; a deadlock or serialization failure with another instance (the
        database aborts one of them) is retried, up to 5 times."""
        import psycopg

        for attempt in range(5):
            try:
                return self._write_once(batch)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _write_once(self, batch: Incoming) -> list[dict[str, Any]]:
        now = time.time()

        def run(cur: Any) -> list[tuple[str, dict[str, Any]]]:
            new = self._events(cur, batch.events, now)
            seen = batch.last_seen()
            if seen:  # sorted by device: two instances lock device rows in the same order (no deadlock)
                cur.executemany("INSERT INTO devices (device, last_seen) VALUES (%s, %s) ON CONFLICT (device) "
                                "DO UPDATE SET last_seen = GREATEST(COALESCE(devices.last_seen, 0), "
                                "EXCLUDED.last_seen)", seen)
            cur.executemany("UPDATE devices SET online = %s, presence_at = %s WHERE device = %s AND "
                            "COALESCE(presence_at, 0) <= %s",
                            [(on, at, d, at) for d, (on, at) in sorted(batch.presence.items())])
            cur.executemany("UPDATE devices SET status = %s, status_at = %s WHERE device = %s AND "
                            "COALESCE(status_at, 0) <= %s",
                            [(text, at, d, at) for d, (text, at) in sorted(batch.status.items())])
            totals: dict[str, list[int]] = {}
            for device, doc in new:
                t = totals.setdefault(device, [0, 0])
                t[0] += 1
                t[1] = max(t[1], int(doc["seq"]))
            cur.executemany("UPDATE devices SET events = events + %s, last_seq = GREATEST(last_seq, %s) "
                            "WHERE device = %s", [(n, seq, d) for d, (n, seq) in sorted(totals.items())])
            if batch.snapshots:
                cur.executemany("INSERT INTO snapshots VALUES (%s, %s, %s, %s) ON CONFLICT (event_id, kind) "
                                "DO UPDATE SET jpeg = EXCLUDED.jpeg, received = EXCLUDED.received",
                                batch.snapshots)
            self._touched.update(totals)
            self._prune(cur)
            return new

        return [doc for _, doc in self._transaction(run)]

    def _events(self, cur: Any, events: list[tuple[str, dict[str, Any], str, float]],
                now: float) -> list[tuple[str, dict[str, Any]]]:
        if not events:
            return []
        rows, docs = [], {}
        for device, doc, text, at in events:
            eid = str(doc["id"])
            if eid in docs:
                self.duplicates += 1
                continue
            docs[eid] = (device, doc)
            rows.append((eid, device, int(doc["seq"]), str(doc["type"]), doc.get("time"), text, at, now))
        # sorted by id: two instances inserting overlapping batches take the unique index's locks in one
        # order (in arrival order they deadlocked, PostgreSQL aborting one of the two)
        rows.sort()
        cur.execute("INSERT INTO events (id, device, seq, type, time, body, received, stored) "
                    "SELECT * FROM UNNEST(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], "
                    "%s::float8[], %s::float8[]) ON CONFLICT (id) DO NOTHING RETURNING id",
                    [list(c) for c in zip(*rows)])
        inserted = {r[0] for r in cur.fetchall()}
        self.duplicates += len(rows) - len(inserted)
        return [docs[eid] for eid in docs if eid in inserted]

    def _prune(self, cur: Any) -> None:
        now = time.monotonic()
        if now - self._pruned_at < self.prune_every_s:
            return
        self._pruned_at = now
        for device in sorted(self._touched):
            cur.execute("WITH old AS (SELECT id FROM events WHERE device = %s ORDER BY seq DESC OFFSET %s), "
                        "gone AS (DELETE FROM snapshots WHERE event_id IN (SELECT id FROM old)) "
                        "DELETE FROM events WHERE id IN (SELECT id FROM old)", (device, self.keep_events))
        self._touched.clear()
        cur.execute("SELECT COALESCE(SUM(LENGTH(jpeg)), 0) FROM snapshots")
        total = int(cur.fetchone()[0])
        if total > self.snapshot_bytes:  # the oldest go first, down to 90 % of the cap
            cur.execute("DELETE FROM snapshots WHERE (event_id, kind) IN (SELECT event_id, kind FROM (SELECT event_id, "
                        "kind, SUM(LENGTH(jpeg)) OVER (ORDER BY received DESC) AS upto FROM snapshots) s WHERE upto > %s)",
                        (int(self.snapshot_bytes * 0.9),))

    # -- reading (web threads) --------------------------------------------------------------------------
    def _query(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._read.closed or self._read.broken:
                self._read = _psycopg().connect(self.url, autocommit=True)
            with self._read.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()

    def devices(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT device, online, presence_at, status, status_at, last_seen, events, last_seq "
                           "FROM devices ORDER BY device")
        return [{"device": d, "online": bool(o), "presence_at": p, "status": json.loads(s) if s else None,
                 "status_at": sa, "last_seen": ls, "events": int(n), "last_seq": int(q)}
                for d, o, p, s, sa, ls, n, q in rows]

    def recent_events(self, limit: int = 50, device: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE device = %s", [device]) if device else ("", [])
        rows = self._query(f"SELECT id, body, received FROM events {where} ORDER BY received DESC, seq DESC LIMIT %s",
                           [*args, limit])
        kinds: dict[str, list[str]] = {}
        if rows:
            for eid, kind in self._query("SELECT event_id, kind FROM snapshots WHERE event_id = ANY(%s)",
                                         ([r[0] for r in rows],)):
                kinds.setdefault(eid, []).append(kind)
        out = []
        for eid, body, received in rows:
            e = json.loads(body)
            e.pop("snapshot", None)
            e["received"] = received
            e["snapshots"] = {k: f"snapshot/{eid}/{k}" for k in sorted(kinds.get(eid, []))}
            out.append(e)
        return out

    def event_ids(self) -> set[str]:
        return {r[0] for r in self._query("SELECT id FROM events")}

    def snapshot(self, event_id: str, kind: str) -> bytes | None:
        rows = self._query("SELECT jpeg FROM snapshots WHERE event_id = %s AND kind = %s", (event_id, kind))
        return bytes(rows[0][0]) if rows else None

    # -- rollouts ------------------------------------------------------------------------------------
    def rollouts(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._query("SELECT body FROM rollouts ORDER BY created DESC")]

    def add_rollout(self, doc: dict[str, Any]) -> None:
        self._transaction(lambda cur: cur.execute(
            "INSERT INTO rollouts (id, state, created, updated, body) VALUES (%s, %s, %s, %s, %s)",
            (doc["id"], doc["state"], doc["created"], time.time(), json.dumps(doc, sort_keys=True))))

    def update_rollout(self, rid: str, change: RolloutChange) -> dict[str, Any] | None:
        """``change(doc)`` -> the new document or None; a rollout another instance holds now is skipped."""
        def run(cur: Any) -> dict[str, Any] | None:
            cur.execute("SELECT body FROM rollouts WHERE id = %s FOR UPDATE SKIP LOCKED", (rid,))
            row = cur.fetchone()
            new = change(json.loads(row[0])) if row else None
            if new is not None:
                cur.execute("UPDATE rollouts SET state = %s, updated = %s, body = %s WHERE id = %s",
                            (new["state"], time.time(), json.dumps(new, sort_keys=True), rid))
            return new
        return self._transaction(run)

    def _transaction(self, run: Any) -> Any:
        with self._lock:
            if self._write.closed or self._write.broken:
                self._reconnect()
            try:
                with self._write.cursor() as cur:
                    out = run(cur)
                self._write.commit()
            except BaseException:
                try:
                    self._write.rollback()
                except Exception:
                    pass
                raise
        return out

    def close(self) -> None:
        with self._lock:
            for conn in (self._write, self._read):
                try:
                    conn.close()
                except Exception:
                    pass


def open_store(store: str, state_dir: Any, keep_events: int, snapshot_bytes: int) -> Any:
    """``--store``: "" = SQLite under the state folder, ``postgresql://...`` = the shared store."""
    if store.startswith(("postgresql://", "postgres://")):
        return PgFleetStore(store, keep_events=keep_events, snapshot_bytes=snapshot_bytes)
    from pathlib import Path

    from .store import FleetStore
    return FleetStore(Path(store) if store else Path(state_dir) / "fleet.sqlite", keep_events=keep_events,
                      snapshot_bytes=snapshot_bytes)
