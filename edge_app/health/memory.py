"""Memory handed back: a long-running process whose streams come and go must not grow with every cycle.

glibc gives each thread that allocates its own malloc arena (up to 8 per core) and keeps what a thread
freed in it. Every stream brings threads (source, output, GStreamer's), so adding and removing streams
left the heap fragmented over ever more arenas: measured on 2 cores, two 768x432 streams added and
removed 10 times took RSS from 245 to 336 MB; with the arenas bounded (``limit_arenas``) and the freed
heap trimmed after a removal (``release_memory``) it stays within a few MB of the first cycle.
"""
from __future__ import annotations

import ctypes
import gc
import os

_M_ARENA_MAX = -8  # mallopt(3)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, macOS): its allocator has its own rules
        return None


def limit_arenas(count: int | None = None) -> bool:
    """Bound glibc's malloc arenas (call before threads start); ``MALLOC_ARENA_MAX`` in the environment
    wins. Default: the number of cores, at least 2 (glibc's own: 8 per core)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, count or max(2, os.cpu_count() or 2)))


def release_memory() -> None:
    """Collect reference cycles and hand freed heap back to the OS (after a stream is removed)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
