"""What one HTTP client may cost the device, on the real server (``web.LiveServer``) over real sockets:
slow senders are cut off at the head deadline and their threads freed, a body shorter than its
Content-Length is answered 408, a connection beyond the cap is answered 503, hostile JSON is a 4xx that
names the limit (never a dropped connection and a RecursionError in the log), and a label with 200,000
boxes is refused with 413.

Each failed on the code before issue 21: 100 one-byte-a-second clients held 100 threads for 30 s, a short
body held its thread until the client left, 10,000-deep JSON dropped the connection, 200,000 boxes were
written as a 28.6 MB XML."""
import json
import socket
import threading
import time

import pytest

from edge_app.core.bounded_json import BoundError
from edge_app.serve.guard import Limits
from edge_app.serve.web import HttpService, LiveServer

pytestmark = pytest.mark.slow


class Echo:
    """A write route: the parsed JSON body back, or the limit it broke (as every API of ours answers)."""

    def routes(self):
        return {"/api/echo": self._echo}

    def writes(self):
        return {"/api/echo"}

    def _echo(self, req, path, query):
        try:
            body = HttpService.read_json(req, 64 * 2**10)
        except BoundError as exc:
            HttpService.send_json(req, HttpService.error_code(exc), {"error": str(exc)})
            return
        HttpService.send_json(req, 200, {"got": body})


@pytest.fixture()
def server():
    s = LiveServer({}, lambda: {"fps": 1.0}, port=0, extras=[Echo()],
                   limits=Limits(head_s=1.5, body_s=3.0, max_connections=40))
    yield s
    s.close()


def _handlers() -> int:
    """The server's handler threads (socketserver names them after process_request_thread)."""
    return sum("process_request" in t.name for t in threading.enumerate())


def _request(port: int, raw: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and b"Content-Length" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
        return out


def _post(port: int, body: bytes, path: str = "/api/echo") -> tuple[int, dict]:
    raw = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
           "Connection: close\r\n\r\n").encode() + body
    out = _request(port, raw)
    head, _, rest = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest or b"{}")


def test_slow_senders_are_cut_off_and_their_threads_freed(server):
    socks = []
    stop = threading.Event()

    def drip(s):  # one byte a second, forever: the head never ends
        try:
            s.sendall(b"GET /status HTTP/1.1\r\n")
            while not stop.is_set():
                s.sendall(b"X")
                time.sleep(1.0)
        except OSError:
            pass

    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", server.port))
        socks.append(s)
        threading.Thread(target=drip, args=(s,), daemon=True).start()
    try:
        time.sleep(0.5)
        assert server.guard.open == 30 and _handlers() == 30
        # a normal client is served meanwhile
        assert b"200 OK" in _request(server.port, b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        end = time.monotonic() + 1.5 + 2.0  # the head deadline + the reaper's period + slack
        while time.monotonic() < end and server.guard.open > 0:
            time.sleep(0.1)
        assert server.guard.open == 0 and server.guard.expired >= 30
        time.sleep(0.3)
        assert _handlers() == 0                           # the handler threads are gone
    finally:
        stop.set()
        for s in socks:
            s.close()


def test_a_body_shorter_than_its_length_is_answered_408_and_frees_the_thread(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\": 1")
        start = time.monotonic()
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408") and b"shorter than its Content-Length" in answer, answer
    assert waited < 3.0 + 1.0
    time.sleep(0.3)
    assert server.guard.open == 0


def test_connections_beyond_the_cap_are_answered_503_at_once(server):
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
    try:
        end = time.monotonic() + 5
        while server.guard.open < 40 and time.monotonic() < end:
            time.sleep(0.05)
        assert server.guard.open == 40, server.guard.open
        start = time.monotonic()
        answer = _request(server.port, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
        assert answer.startswith(b"HTTP/1.1 503") and time.monotonic() - start < 1.0
        assert server.guard.refused == 1
    finally:
        for s in held:
            s.close()


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


@pytest.mark.parametrize("body, code, names", [
    (_deep(10_000), 400, "nested deeper than 8 levels"),     # beyond Python's recursion limit
    (_deep(20), 400, "nested deeper than 8 levels"),
    (b'{"a": NaN}', 400, "NaN is not a JSON number"),
    (b'{"a": ' + str(2**70).encode() + b"}", 400, "outside +-2**53"),
    (json.dumps({"s": "x" * 5000}).encode(), 400, "at most 4096"),
    (json.dumps(list(range(3000))).encode(), 413, "at most 2000"),
    (b"x" * (70 * 2**10), 413, "at most 65536"),
    (b"{not json", 400, "not JSON"),
])
def test_hostile_json_is_a_4xx_naming_the_limit(server, body, code, names, caplog):
    status, answer = _post(server.port, body)
    assert status == code and names in answer["error"], answer
    assert not any("RecursionError" in r.getMessage() or r.exc_info for r in caplog.records)
    assert _post(server.port, b'{"ok": [1, 2]}') == (200, {"got": {"ok": [1, 2]}})   # and it goes on
