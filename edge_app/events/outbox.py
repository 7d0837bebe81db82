"""A durable outbox: every message stays on disk (SQLite, WAL) until the broker acknowledged it.

Survives a broker outage and ``kill -9`` of the app (a committed WAL transaction is the OS's, not the
process's; ``synchronous=NORMAL`` trades only power-loss durability of the last commits for speed);
messages come out in the order they went in; the event sequence number is kept here too, so ids never
repeat across restarts. An event is numbered and stored in one transaction (``add``): when the disk is
full nothing is committed and the number is not used, so the sequence never has a gap (the caller keeps
the event and tries again; the other writers leave a reserve of free space for the outbox, see
``health.disk``). Disk use is capped: beyond ``max_bytes`` the oldest messages are dropped and counted
(``dropped``), never the newest. Thread-safe: the pipeline adds, the publisher reads and acks.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
Message = tuple[str, "bytes | None", "str | None"]  # topic, payload, or a file whose bytes are sent


class Outbox:
    def __init__(self, path: Path, max_bytes: int = 100 * 2**20) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS messages (n INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT "
                         "NOT NULL, payload BLOB, file TEXT, qos INTEGER NOT NULL, retain INTEGER NOT NULL, "
                         "size INTEGER NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._bytes = int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM messages").fetchone()[0])
        self.version = 0  # counts puts: a reader can tell there is something new without a query

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    @property
    def last_seq(self) -> int:
        """The last event number used (persistent: survives restarts and an emptied outbox)."""
        with self._lock:
            return self._meta("seq")

    def put(self, topic: str, payload: bytes | None = None, *, file: str | None = None, qos: int = 1,
            retain: bool = False) -> None:
        """Keep a message (``payload``, or a ``file`` whose bytes are read when it is sent)."""
        with self._lock:
            self._transaction(lambda: self._insert([(topic, payload, file)], qos, retain))

    def add(self, build: Callable[[int], tuple[T, list[Message]]], qos: int = 1) -> T:
        """Number an event and keep its messages in one transaction: ``build(seq)`` returns (the event,
        its messages). If the disk refuses (sqlite3.OperationalError, OSError), nothing is kept and the
        number stays unused: calling again later numbers the same event the same way."""
        with self._lock:
            def work() -> T:
                seq = self._meta("seq") + 1
                result, messages = build(seq)
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (seq,))
                self._insert(messages, qos, False)
                return result
            return self._transaction(work)

    def _transaction(self, work: Callable[[], T]) -> T:
        before = self._bytes
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            self._db.execute("COMMIT")
        except BaseException:
            self._bytes = before
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:  # the failed statement may have ended the transaction already
                pass
            raise
        self.version += 1
        return result

    def _insert(self, messages: list[Message], qos: int, retain: bool) -> None:
        rows = [(topic, payload, file, qos, int(retain), len(payload or b"") + len(topic) + 64)
                for topic, payload, file in messages]
        self._db.executemany("INSERT INTO messages (topic, payload, file, qos, retain, size) VALUES (?, ?, ?, ?, ?, ?)",
                             rows)
        self._bytes += sum(r[-1] for r in rows)
        if self._bytes > self.max_bytes:
            self._trim()

    def _trim(self) -> None:
        dropped = 0
        while self._bytes > self.max_bytes:
            rows = self._db.execute("SELECT n, size FROM messages ORDER BY n LIMIT 100").fetchall()
            if not rows:
                break
            cut = []
            for n, size in rows:
                if self._bytes <= self.max_bytes:
                    break
                cut.append(n)
                self._bytes -= size
            self._db.execute(f"DELETE FROM messages WHERE n IN ({','.join('?' * len(cut))})", cut)
            dropped += len(cut)
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped', ?)", (self._meta("dropped") + dropped,))

    def pending(self, after: int = 0, limit: int = 100) -> list[tuple[int, str, bytes | None, str | None, int, bool]]:
        """Up to ``limit`` messages after number ``after``, oldest first: (n, topic, payload, file, qos, retain)."""
        with self._lock:
            rows = self._db.execute("SELECT n, topic, payload, file, qos, retain FROM messages WHERE n > ? ORDER BY n "
                                    "LIMIT ?", (after, limit)).fetchall()
        return [(int(n), t, p, f, int(q), bool(r)) for n, t, p, f, q, r in rows]

    def ack(self, n: int) -> None:
        with self._lock:
            row = self._db.execute("SELECT size FROM messages WHERE n = ?", (n,)).fetchone()
            if row:
                self._db.execute("DELETE FROM messages WHERE n = ?", (n,))
                self._bytes -= int(row[0])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._meta("dropped")

    def close(self) -> None:
        with self._lock:
            self._db.close()
