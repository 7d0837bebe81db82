"""sd_notify over a real NOTIFY_SOCKET: READY once models and outputs are up, WATCHDOG while the process
works (a camera away for a minute included) and not when a pipeline thread is stuck, STATUS, STOPPING on
SIGTERM; path and abstract socket addresses; nothing without NOTIFY_SOCKET."""
import json
import os
import socket
import time

import pytest

from edge_app.health.notify import Notifier
from tests.gst_helpers import free_port, require_gst, start_rtsp_server
from tests.test_app import Running, http_get, write_config


class Listener:
    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []

    def collect(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except socket.timeout:
                pass

    def times(self, field: str) -> list[float]:
        return [t for t, m in self.messages if field in m.split("\n")]


def test_notifier_without_socket_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled and n.ready() is False


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_sends_to_path_and_abstract_sockets(tmp_path, abstract):
    address = f"@edge-test-{os.getpid()}-{abstract}" if abstract else str(tmp_path / "notify.sock")
    listener = Listener(address)
    n = Notifier(address)
    assert n.ready("warming up") and n.watchdog() and n.stopping()
    listener.collect(0.3)
    assert [m for _, m in listener.messages] == ["READY=1\nSTATUS=warming up", "WATCHDOG=1", "STOPPING=1"]


def _gaps(times, start, end):
    inside = [t for t in times if start <= t <= end]
    return [b - a for a, b in zip([start] + inside, inside + [end])]


@pytest.mark.slow
def test_camera_down_at_boot_and_for_a_minute_keeps_pinging_then_reconnects(tmp_path):
    """READY means models loaded and outputs serving (not "first frame"); a camera away for 60 s is a
    degraded state in STATUS and /healthz while WATCHDOG pings go on, and the source comes back by itself."""
    require_gst()
    port, http = free_port(), free_port()
    sock = str(tmp_path / "notify.sock")
    listener = Listener(sock)
    cfg = write_config(tmp_path, source=f"rtsp://127.0.0.1:{port}/test", port=http)
    cfg.write_text(cfg.read_text().replace("fps = 15.0", "fps = 15.0\nrtsp_latency_ms = 50\nreconnect_max_s = 4.0"))
    app = Running(cfg, env={"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "2000000"}, max_seconds=150)
    server = None
    try:
        started = time.monotonic()
        listener.collect(8.0)
        ready = listener.times("READY=1")
        assert len(ready) == 1 and ready[0] - started < 8.0, listener.messages  # no frame needed for READY
        code, body = http_get(f"http://127.0.0.1:{http}/healthz")
        health = json.loads(body)
        assert code == 200 and health["state"] == "degraded" and "source lost" in health["reasons"][0], health
        listener.collect(52.0)                      # the camera stays away for a minute in all
        down_until = time.monotonic()
        status = json.loads(http_get(f"http://127.0.0.1:{http}/status")[1])
        assert status["source"]["state"] == "reconnecting" and status["source"]["reconnects"] >= 5
        assert 'edge_health{state="degraded"} 1.0' in http_get(f"http://127.0.0.1:{http}/metrics")[1].decode()
        server = start_rtsp_server(port)             # the camera is back
        back = None
        while time.monotonic() - down_until < 20 and back is None:
            listener.collect(0.5)
            st = json.loads(http_get(f"http://127.0.0.1:{http}/status")[1])
            if st["source"]["state"] == "playing" and st["health"]["state"] == "ok":
                back = time.monotonic()
        listener.collect(2.0)
    finally:
        app.stop()
        listener.collect(0.5)
        if server is not None:
            server.kill()
            server.wait()
    dogs = listener.times("WATCHDOG=1")
    assert back is not None, "the source did not reconnect after the camera came back"
    assert len(dogs) >= 50 and max(_gaps(dogs, ready[0], down_until)) < 2.0  # pinged all through the outage
    texts = [m for _, m in listener.messages if "STATUS=" in m]
    assert any("degraded" in m and "source lost" in m for m in texts)
    assert listener.times("STOPPING=1")
    assert app.proc.returncode == 0


@pytest.mark.slow
def test_a_stuck_pipeline_thread_stops_the_pings(tmp_path):
    """A wedged thread is what the watchdog is for: the inference thread blocks for good in a read (a
    labels 'file' that is a FIFO nobody writes), pings stop after runtime.wedged_after_s, /healthz says
    why with 503."""
    require_gst()
    labels = tmp_path / "labels"
    labels.mkdir()
    os.mkfifo(labels / "20.xml")                 # frame 20's label: opening it blocks until a writer comes
    http = free_port()
    sock = str(tmp_path / "notify.sock")
    listener = Listener(sock)
    cfg = write_config(tmp_path, source="test://", port=http,
                       extra=f'[runtime]\nwedged_after_s = 2.0\n\n[labels]\nlabels_file = "{labels}"\n')
    app = Running(cfg, env={"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "1000000"}, max_seconds=60)
    try:
        # until the app says it is failing (later on a loaded machine, whose start is slower), then 4 s more
        end = time.monotonic() + 60
        while time.monotonic() < end and not any("failing" in m for _, m in listener.messages):
            listener.collect(0.5)
        listener.collect(4.0)
        code, body = http_get(f"http://127.0.0.1:{http}/healthz")
    finally:
        fd = os.open(labels / "20.xml", os.O_WRONLY | os.O_NONBLOCK)  # let the reader go (empty file)
        os.close(fd)
        app.stop()
    dogs = listener.times("WATCHDOG=1")
    ready = listener.times("READY=1")
    assert ready and len([t for t in dogs if t < ready[0] + 1.5]) >= 1   # pings while it worked
    assert code == 503 and "the inference thread has been stuck" in json.loads(body)["reasons"][0], body
    last = max(dogs)
    assert listener.messages[-1][0] - last > 3.0, "pings went on while the inference thread was stuck"
    assert any("failing" in m for _, m in listener.messages if "STATUS=" in m)
