"""What one HTTP client may cost: a deadline for its request head, one for its body, a cap on
connections, and a cap on the JSON it sends.

``http.server`` reads a request line and headers with no deadline: a client sending one byte a second
holds a thread for as long as it likes, and a body shorter than its Content-Length holds one until the
client leaves. Here every connection has an absolute deadline for its current phase (waiting for and
reading a request head: ``head_s``; reading the body and answering: ``body_s``); one reaper thread shuts
the sockets that pass it, whatever trickle they keep up. Streams (MJPEG) end their deadline once the
response has begun. Beyond ``max_connections`` a new client is answered 503 at once and closed.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("edge_app.serve")


@dataclass(frozen=True)
class Limits:
    head_s: float = 10.0            # request line + headers, from the moment the server waits for them
    body_s: float = 30.0            # body read + answer, from the end of the head
    max_connections: int = 128
    max_body: int = 8 * 2**20       # bytes of a JSON body (routes may ask for less)


class ConnectionGuard:
    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.refused = self.expired = 0
        self._thread = threading.Thread(target=self._reap, name="http-reaper", daemon=True)
        self._thread.start()

    def admit(self, sock: socket.socket) -> bool:
        """A new connection: False (and a 503) when ``max_connections`` are open."""
        with self._lock:
            if len(self._deadlines) >= self.limits.max_connections:
                self.refused += 1
                full = True
            else:
                self._deadlines[sock] = time.monotonic() + self.limits.head_s
                full = False
        if full:
            try:
                sock.settimeout(1.0)
                sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                             b"Content-Length: 27\r\n\r\ntoo many connections, later")
            except OSError:
                pass
        return not full

    def phase(self, sock: socket.socket, seconds: float | None) -> None:
        """The connection starts a phase that must end within ``seconds`` (None: no deadline, a stream)."""
        with self._lock:
            if sock in self._deadlines:
                self._deadlines[sock] = time.monotonic() + seconds if seconds is not None else float("inf")

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(sock, None)

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._deadlines)

    def _reap(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [s for s, end in self._deadlines.items() if now > end]
                for s in late:
                    self._deadlines[s] = float("inf")  # shut once
            for s in late:
                self.expired += 1
                try:
                    s.shutdown(socket.SHUT_RDWR)  # the handler's blocked read returns at once; its thread ends
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
