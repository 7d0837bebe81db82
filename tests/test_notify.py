"""sd_notify over a real NOTIFY_SOCKET: READY after the first frame, WATCHDOG only while frames flow,
STATUS, STOPPING on SIGTERM; path and abstract socket addresses; nothing without NOTIFY_SOCKET."""
import os
import socket
import time

import pytest

from edge_app.notify import Notifier
from tests.gst_helpers import require_gst
from tests.test_app import Running, write_config
from tests.test_rolling import write_synthetic_voc


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


@pytest.mark.slow
def test_ready_watchdog_status_stopping_and_stall(tmp_path):
    require_gst()
    data = write_synthetic_voc(tmp_path / "voc", 12)
    sock = str(tmp_path / "notify.sock")
    listener = Listener(sock)
    cfg = write_config(tmp_path, source=f"replay://{data}")
    cfg.write_text(cfg.read_text().replace('fps = 15.0', 'fps = 4.0\nloop = false'))
    app = Running(cfg, env={"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "1000000"})
    try:
        listener.collect(11.0)   # 12 frames at 4 fps = 3 s of stream, then the source has ended
    finally:
        app.stop()
        listener.collect(0.5)
    ready = listener.times("READY=1")
    dogs = listener.times("WATCHDOG=1")
    assert len(ready) == 1
    assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for _, m in listener.messages)
    assert listener.times("STOPPING=1")
    flowing = [t for t in dogs if t < ready[0] + 3.0]
    assert len(flowing) >= 3                       # pings at half of WATCHDOG_USEC while frames flow
    last_frame = ready[0] + 3.0
    late = [t for t in dogs if t > last_frame + 5.5]
    assert late == [], "watchdog pings went on after the source stalled"
