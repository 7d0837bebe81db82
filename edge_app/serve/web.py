"""HTTP live view: a page with the annotated MJPEG stream and live numbers, /status JSON, /metrics
(Prometheus), /healthz. Binds 127.0.0.1 unless configured otherwise; with a token every request needs it
(``serve.access``: the header, the session cookie a page gets, or ``?token=`` for reads). Every client is
bounded (``serve.guard``: head and body deadlines, a connection cap, bounded JSON bodies).
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ..core import bounded_json
from .prometheus import metrics_text
from . import access
from .guard import ConnectionGuard, Limits

log = logging.getLogger("edge_app.serve.web")
PAGE = Path(__file__).with_name("page.html")


class FrameHub:
    """The newest annotated frame and its sequence number; MJPEG clients and snapshots wait on it.

    The frame is JPEG-encoded lazily, once, by the first client that wants it (``encode``): with nobody
    watching, nothing is encoded, and the pipeline's output thread never waits on an encoder.
    """

    def __init__(self, encode: Callable[[Any], bytes | None]) -> None:
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._encode = encode
        self._image: Any = None
        self.jpeg: bytes | None = None
        self._jpeg_seq = 0
        self.seq = 0
        self.closed = False
        self.encoded = 0  # frames encoded so far

    def offer(self, image: Any) -> None:
        """The newest frame, to be encoded only if someone asks for it (never modified afterwards)."""
        with self._cond:
            self.seq += 1
            self._image = image
            self._cond.notify_all()

    def _current(self) -> tuple[int, bytes | None]:
        with self._cond:
            seq, image = self.seq, self._image
            if self._jpeg_seq == seq or image is None:
                return seq, self.jpeg
        with self._encode_lock:  # one encode per frame, however many viewers
            with self._cond:
                if self._jpeg_seq >= seq:
                    return self._jpeg_seq, self.jpeg
            data = self._encode(image)
            with self._cond:
                if data is not None and seq > self._jpeg_seq:
                    self.jpeg, self._jpeg_seq = data, seq
                    self.encoded += 1
                return self._jpeg_seq, self.jpeg

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, bytes | None]:
        with self._cond:
            if self.seq <= seq and not self.closed:
                self._cond.wait(timeout)
        return self._current()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def authorised(headers: Any, query: dict[str, list[str]], token: str) -> bool:
    """The token rule of a read (``serve.access.authorised``), without a session cookie."""
    return access.authorised(headers, query, token)


Route = Callable[[BaseHTTPRequestHandler, str, dict[str, list[str]]], None]


class HttpService:
    """A small threaded HTTP server: token check, then ``routes()`` by path (exact, or a prefix ending in
    "/"), each route called with (request, path, query); ``req.command`` tells GET from POST / DELETE.
    Runs in background threads until ``close``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8080, token: str = "", name: str = "http",
                 limits: Limits = Limits()) -> None:
        self.token, self.limits = token, limits
        self.guard = ConnectionGuard(limits)
        service = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the listen backlog (5 by default: a burst of viewers waited on SYN retries)

            def process_request(self, request: Any, client_address: Any) -> None:
                if not service.guard.admit(request):
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def shutdown_request(self, request: Any) -> None:
                service.guard.release(request)
                super().shutdown_request(request)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = limits.head_s  # no read or write waits longer for a byte (the guard bounds the whole)

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the access log is not our log
                log.debug("%s " + fmt, self.address_string(), *args)

            def handle_one_request(self) -> None:
                service.guard.phase(self.connection, limits.head_s)  # the next request's head, from now
                super().handle_one_request()

            def parse_request(self) -> bool:
                ok = super().parse_request()
                service.guard.phase(self.connection, limits.body_s)
                return ok

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                service._handle(self)

            def do_POST(self) -> None:  # noqa: N802
                service._handle(self)

            def do_DELETE(self) -> None:  # noqa: N802
                service._handle(self)

        self.httpd = Server((host, port), Handler)
        # handlers reach the guard through req.server
        self.httpd.guard = self.guard  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.cookie = access.cookie_name(self.port)
        self.host = host
        self._thread = threading.Thread(target=self.httpd.serve_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def routes(self) -> dict[str, Route]:
        raise NotImplementedError

    def writes(self) -> set[str]:
        """The routes that take POST / DELETE (the others answer 405)."""
        return set()

    @staticmethod
    def send(req: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str,
             headers: tuple[tuple[str, str], ...] = ()) -> None:
        req.send_response(code)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Cache-Control", "no-store")
        for key, value in access.COMMON_HEADERS + headers:
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(body)

    @staticmethod
    def send_page(req: BaseHTTPRequestHandler, path: Path) -> None:
        """An HTML page with its Content-Security-Policy (only its own inline scripts run)."""
        body, csp = access.page(path)
        HttpService.send(req, 200, body, "text/html; charset=utf-8",
                         (("Content-Security-Policy", csp), ("X-Frame-Options", "DENY")))

    @staticmethod
    def stream_started(req: BaseHTTPRequestHandler) -> None:
        """A long response (MJPEG) has begun: its connection leaves the body deadline."""
        guard = getattr(req.server, "guard", None)
        if guard is not None:
            guard.phase(req.connection, None)

    @staticmethod
    def send_json(req: BaseHTTPRequestHandler, code: int, body: Any) -> None:
        HttpService.send(req, code, (json.dumps(body, default=str) + "\n").encode(), "application/json")

    @staticmethod
    def read_json(req: BaseHTTPRequestHandler, limit: int = 8 * 2**20,
                  bounds: bounded_json.Bounds = bounded_json.Bounds()) -> Any:
        """The request's JSON body within ``limit`` bytes and ``bounds`` (depth, entries, lengths); a
        ``BoundError`` (a ValueError) names what is wrong; ``error_code`` gives its HTTP status."""
        try:
            length = int(req.headers.get("Content-Length", "0"))
        except ValueError:
            raise bounded_json.BoundError("bad_length", "Content-Length: not a number") from None
        if length > limit:
            raise bounded_json.BoundError("too_large", f"body of {length} bytes: at most {limit}")
        try:
            data = req.rfile.read(length)
        except (TimeoutError, socket.timeout):
            req.close_connection = True  # what is left of that body must not be read as the next request
            raise bounded_json.BoundError("timeout", "body: shorter than its Content-Length (the client stopped "
                                                     "sending)") from None
        if len(data) < length:
            req.close_connection = True
            raise bounded_json.BoundError("short", f"body of {len(data)} bytes: shorter than its Content-Length "
                                                   f"{length}")
        return bounded_json.loads(data or b"null", limit, bounds)

    @staticmethod
    def error_code(exc: Exception) -> int:
        """413 for a body too large, 408 for one that did not come, else 400."""
        reason = getattr(exc, "reason", "")
        return {"too_large": 413, "too_many": 413, "timeout": 408}.get(reason, 400)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        query = parse_qs(parts.query)
        write = req.command != "GET"
        # A write never takes the token from the URL (histories, logs) nor from the cookie alone (a page
        # elsewhere could make the browser send it): serve.access.
        if not access.authorised(req.headers, query, self.token, write=write, cookie=self.cookie):
            self.send(req, 401, b"token required" + (b" (writes: Authorization: Bearer)" if write else b"")
                      + b"\n", "text/plain")
            return
        if (self.token and not write and "token" in query and "text/html" in req.headers.get("Accept", "")
                and not req.headers.get("Authorization")):
            # A browser opened a page with ?token=: the token moves into an HttpOnly cookie and the page
            # is loaded again without it, so no script can read it from the address.
            rest = urlencode([(k, v) for k, vs in query.items() if k != "token" for v in vs])
            req.send_response(303)
            req.send_header("Location", parts.path + (f"?{rest}" if rest else ""))
            req.send_header("Set-Cookie", access.session_cookie(self.cookie, self.token))
            req.send_header("Content-Length", "0")
            req.send_header("Cache-Control", "no-store")
            req.end_headers()
            return
        routes = self.routes()
        key: str | None = parts.path if parts.path in routes else None
        prefix = parts.path[:parts.path.rfind("/") + 1]
        while key is None and len(prefix) > 1:  # "/snapshot/a/b" -> "/snapshot/a/", "/snapshot/" (never "/")
            key = prefix if prefix in routes else None
            prefix = prefix[:prefix[:-1].rfind("/") + 1]
        if key is None:
            self.send(req, 404, b"not found\n", "text/plain")
            return
        if req.command != "GET" and key not in self.writes():
            self.send(req, 405, b"method not allowed\n", "text/plain")
            return
        handler = routes[key]
        try:
            handler(req, parts.path, query)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.guard.close()
        self._thread.join(2)


class LiveServer(HttpService):
    """The device's live view: the page (a grid of every stream), each stream's MJPEG and snapshot
    (``/streams/NAME.mjpg``, ``/streams/NAME.jpg``, ``/stream.mjpg`` = the first stream), /status, /metrics,
    /healthz, and the routes of ``extras`` (labelling, the streams API)."""

    def __init__(self, hubs: dict[str, FrameHub], status: Callable[[], dict[str, Any]], *, host: str = "127.0.0.1",
                 port: int = 8080, token: str = "", health: Callable[[], Any] | None = None,
                 review: Any = None, extras: list[Any] | None = None, limits: Limits = Limits()) -> None:
        """hubs: stream name -> its newest frame (shared: streams come and go while serving);
        review / extras: objects with ``routes()`` and ``writes()`` (edge_app.review.api.Review, ...)."""
        self.hubs, self.status = hubs, status
        self.health, self.review = health, review
        self.extras = list(extras or [])
        self.closed = False
        super().__init__(host=host, port=port, token=token, limits=limits)

    def _providers(self) -> list[Any]:
        return [p for p in (self.review, *self.extras) if p is not None]

    def routes(self) -> dict[str, Route]:
        def plain(f: Callable[[BaseHTTPRequestHandler], None]) -> Route:
            return lambda req, path, query: f(req)

        routes = {"/": plain(self._page), "/index.html": plain(self._page),
                  "/stream.mjpg": lambda req, path, query: self._mjpeg(req, self._first()),
                  "/snapshot.jpg": lambda req, path, query: self._snapshot(req, self._first()),
                  "/streams/": self._stream_route, "/status": plain(self._status),
                  "/metrics": plain(self._metrics), "/healthz": plain(self._health)}
        for p in self._providers():
            routes.update(p.routes())
        return routes

    def writes(self) -> set[str]:
        return set().union(*(p.writes() for p in self._providers()))

    def _first(self) -> FrameHub | None:
        return next(iter(list(self.hubs.values())), None)

    def _stream_route(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        """/streams/NAME.mjpg, /streams/NAME.jpg; NAME/status comes from the streams API (extras)."""
        leaf = path[len("/streams/"):]
        name, _, ext = leaf.rpartition(".")
        hub = self.hubs.get(name)
        if hub is None or ext not in ("mjpg", "jpg"):
            self.send(req, 404, f"no stream {name or leaf!r} (streams: {', '.join(self.hubs) or 'none'})\n".encode(),
                      "text/plain")
        elif ext == "mjpg":
            self._mjpeg(req, hub)
        else:
            self._snapshot(req, hub)

    def _page(self, req: BaseHTTPRequestHandler) -> None:
        self.send_page(req, PAGE)

    def _status(self, req: BaseHTTPRequestHandler) -> None:
        self.send(req, 200, json.dumps(self.status(), default=str).encode(), "application/json")

    def _metrics(self, req: BaseHTTPRequestHandler) -> None:
        self.send(req, 200, metrics_text(self.status()), "text/plain; version=0.0.4")

    def _health(self, req: BaseHTTPRequestHandler) -> None:
        """200 while the process works ({"state": "ok"} or "degraded" with the reasons: a lost camera is
        not fixed by a restart), 503 when it is failing (a stuck or dead pipeline thread)."""
        h = self.health() if self.health is not None else None
        body = {"state": "ok", "reasons": []} if h is None else h.as_dict()
        code = 503 if body["state"] == "failing" else 200
        self.send(req, code, (json.dumps(body) + "\n").encode(), "application/json")

    def _snapshot(self, req: BaseHTTPRequestHandler, hub: FrameHub | None) -> None:
        jpeg = hub.wait_newer(-1, 0)[1] if hub is not None else None
        if jpeg is None:
            self.send(req, 503, b"no frame yet\n", "text/plain")
        else:
            self.send(req, 200, jpeg, "image/jpeg")

    def _mjpeg(self, req: BaseHTTPRequestHandler, hub: FrameHub | None) -> None:
        if hub is None:
            self.send(req, 503, b"no stream yet\n", "text/plain")
            return
        req.send_response(200)
        req.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        req.send_header("Cache-Control", "no-store")
        req.send_header("Connection", "close")
        for key, value in access.COMMON_HEADERS:
            req.send_header(key, value)
        req.end_headers()
        req.close_connection = True
        self.stream_started(req)
        seq = 0
        while not hub.closed and not self.closed:  # a removed stream's hub is closed: its viewers end
            seq, jpeg = hub.wait_newer(seq, 1.0)
            if jpeg is None:
                continue
            req.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
            req.wfile.flush()

    def close(self) -> None:
        self.closed = True
        for hub in list(self.hubs.values()):
            hub.close()
        super().close()
        time.sleep(0)  # let streaming handlers see ``closed``
