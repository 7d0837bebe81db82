"""Disk space shared fairly: what each writer (samples, snapshots, recordings, the event outbox) may use
on its filesystem, and what each could not write, for ``/healthz``.

A configured cap (``max_samples_mb = 200``) is a ceiling, not a promise: on a 20 MB disk the writer gets
what is free, less a reserve kept for the event outbox when it shares the outbox's filesystem, so losing a
sample never costs an event. A writer that cannot write says so here (``problem``) and clears it when it
can again; ``problems()`` are the degraded reasons of the device's health.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use on ``folder``'s filesystem (0 if it cannot be read)."""
    path = Path(folder)
    while not path.exists() and path != path.parent:  # a folder not made yet: its nearest existing parent
        path = path.parent
    try:
        return int(shutil.disk_usage(path).free)
    except OSError:
        return 0


def _device(folder: Path) -> int | None:
    path = Path(folder)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


class DiskBudget:
    def __init__(self, reserve_bytes: int = 32 * 2**20, protected: Path | None = None) -> None:
        """protected: the event outbox's folder; writers on its filesystem leave ``reserve_bytes`` free."""
        self.reserve_bytes = reserve_bytes
        self._protected_dev = _device(protected) if protected is not None else None
        self._problems: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def reserve_for(self, folder: Path) -> int:
        """The free space a writer to ``folder`` must leave alone (the outbox's reserve, on its disk)."""
        if self._protected_dev is None:
            return 0
        return self.reserve_bytes if _device(folder) == self._protected_dev else 0

    def cap(self, folder: Path, configured: int, used: int) -> int:
        """What a writer that already holds ``used`` bytes in ``folder`` may hold in all: its configured cap,
        or less when the disk has less room (never into the outbox's reserve); >= 0."""
        room = used + free_bytes(folder) - self.reserve_for(folder)
        return max(0, min(configured, room))

    # -- what could not be written -------------------------------------------------------------------
    def problem(self, who: str, message: str) -> None:
        """``who`` ("samples", "recording", "events", ...) cannot write: ``message`` says why."""
        with self._lock:
            self._problems[who] = (message, time.monotonic())

    def clear(self, who: str) -> None:
        with self._lock:
            self._problems.pop(who, None)

    def problems(self) -> list[str]:
        """One reason per writer that cannot write now ("samples: paused, ...")."""
        with self._lock:
            return [f"{who}: {message}" for who, (message, _) in sorted(self._problems.items())]
