"""What every source shares: a producer thread, a newest-frame slot, counters, reconnect back-off, and a
heartbeat: the producer loop marks ``alive_at`` each time round (waiting included), so a thread stuck in
a call is told apart from a camera that is away (the watchdog must restart the first, never the second).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.types import Frame

log = logging.getLogger("edge_app.source")


class LatestSlot:
    """A one-item mailbox: ``put`` replaces what the consumer has not taken yet (counted as dropped),
    so the consumer always gets the newest item and never falls behind the producer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: object | None = None
        self.dropped = 0
        self.put_count = 0
        # Called after each put: the batcher of several streams waits on one event for all their slots.
        self.listener: Callable[[], None] | None = None

    def put(self, item: object) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.put_count += 1
            self._cond.notify_all()
        listener = self.listener
        if listener is not None:
            listener()

    def get(self, timeout: float | None = None) -> object | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            if item is not None:
                self._cond.notify_all()  # a producer may be waiting for the slot to empty
            return item

    def wait_taken(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until the consumer has taken the item; True when the slot is empty."""
        with self._cond:
            if self._item is not None:
                self._cond.wait(timeout)
            return self._item is None

    def peek(self) -> object | None:
        with self._cond:
            return self._item


@dataclass
class SourceStats:
    state: str = "starting"   # starting | playing | reconnecting | ended | stopped
    frames: int = 0
    dropped: int = 0          # frames replaced in the slot before the pipeline took them
    errors: int = 0
    reconnects: int = 0
    bad_frames: int = 0
    last_error: str = ""
    last_frame_at: float = field(default=0.0)
    lost_since: float = 0.0   # monotonic time the source was lost (0 while it plays)
    retry_at: float = 0.0     # monotonic time of the next reconnect attempt
    loops: int = 0            # times a looping file or replay started again


class FrameSource:
    """Base class: subclasses implement ``_run()`` (producing into ``self._emit``) until ``stopping``."""

    scheme = ""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        # False: the newest frame wins (a camera). True: the producer waits until the pipeline took
        # the previous frame, so a file played as fast as the models go loses no frame and decodes
        # none in vain.
        self.backpressure = False
        self.stats = SourceStats()
        self.slot = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.alive_at = time.monotonic()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def beat(self) -> None:
        """The producer loop came round (called from every loop and wait of a source)."""
        self.alive_at = time.monotonic()

    def thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "FrameSource":
        self._thread = threading.Thread(target=self._guarded, name=f"source-{self.scheme}", daemon=True)
        self._thread.start()
        return self

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a source must never take the process down
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("source %s failed", self.uri)
        finally:
            if self.stats.state != "ended":
                self.stats.state = "stopped"

    def _run(self) -> None:
        raise NotImplementedError

    def _emit(self, frame: Frame) -> None:
        self.beat()
        while self.backpressure and not self.stopping and not self.slot.wait_taken(0.1):
            self.beat()
        self.stats.frames += 1
        self.stats.last_frame_at = time.monotonic()
        self.slot.put(frame)
        self.stats.dropped = self.slot.dropped

    def read(self, timeout: float = 1.0) -> Frame | None:
        """The newest frame, waiting up to ``timeout`` seconds; None if none arrived."""
        return self.slot.get(timeout)  # type: ignore[return-value]

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, seconds: float) -> bool:
        """Sleep unless stopping, beating at least twice a second; True when asked to stop."""
        end = time.monotonic() + seconds
        while True:
            self.beat()
            left = end - time.monotonic()
            if left <= 0:
                return self._stop.is_set()
            if self._stop.wait(min(left, 0.5)):
                return True


class Backoff:
    """Exponential reconnect delays: initial, x2 each failure, capped; reset after a good frame."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, maximum
        self.current = initial

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.current = self.initial


class Pacer:
    """Keeps a producer at ``fps`` without drift, unless the source runs with back-pressure (then the
    pipeline sets the pace); ``tick`` returns True when asked to stop."""

    def __init__(self, source: FrameSource, fps: float) -> None:
        self.source, self.period = source, 1.0 / fps
        self.next_at = time.monotonic()

    def tick(self) -> bool:
        if self.source.backpressure:
            return self.source.stopping
        self.next_at += self.period
        return self.source.wait(max(0.0, self.next_at - time.monotonic()))
