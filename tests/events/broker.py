"""A real Mosquitto broker for tests: Debian's mosquitto on free loopback ports, a password file, and a
TLS listener with a CA and server certificate made here with openssl. Skips when mosquitto is absent."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.gst_helpers import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
USER, PASSWORD = "edge", "s3cret-pass"


def require_mosquitto() -> None:
    if not Path(MOSQUITTO).is_file():
        pytest.skip("needs Debian's mosquitto (make test installs it)")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 / localhost signed by it, and a second, unrelated CA."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edge-test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=folder)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other-ca",
             "-keyout", "other.key", "-out", "other.crt", cwd=folder)
    return {"ca": folder / "ca.crt", "other_ca": folder / "other.crt"}


class Broker:
    """``Broker(tmp)``: plain port with user/password (anonymous refused), TLS port; start/stop/restart.
    ``anonymous=True``: clients without a user name are let in too, as Debian's mosquitto does on loopback
    out of the box (the README's fleet recipe uses ``mqtt://127.0.0.1:1883``)."""

    def __init__(self, folder: Path, tls: bool = False, anonymous: bool = False) -> None:
        self.anonymous = anonymous
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port, self.tls_port = free_port(), free_port() if tls else None
        self.certs = make_certs(self.folder / "certs") if tls else {}
        passwd = self.folder / "passwd"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), USER, PASSWORD], check=True, capture_output=True)
        import pwd
        # run as whoever runs the test (as root, mosquitto would drop to its own user, who cannot read pytest's
        # private temporary folders)
        conf = [f"user {pwd.getpwuid(os.getuid()).pw_name}", f"listener {self.port} 127.0.0.1",
                f"allow_anonymous {'true' if anonymous else 'false'}", f"password_file {passwd}", "persistence false",
                "per_listener_settings false"]
        if tls:
            c = self.folder / "certs"
            conf += [f"listener {self.tls_port} 127.0.0.1", f"cafile {c / 'ca.crt'}", f"certfile {c / 'server.crt'}",
                     f"keyfile {c / 'server.key'}"]
        (self.folder / "mosquitto.conf").write_text("\n".join(conf) + "\n")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}" if self.anonymous else f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{self.port}"


class Subscriber:
    """A paho client collecting every message of ``topics`` (MQTT 3.1.1, QoS 1)."""

    def __init__(self, broker: Broker, topics: list[str]) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[float, str, bytes, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}")
        self.client.username_pw_set(USER, PASSWORD)
        self.client.on_message = lambda c, u, m: self.messages.append((time.monotonic(), m.topic, m.payload, m.retain))
        self.client.on_connect = lambda c, u, f, rc, p: [c.subscribe(t, qos=1) for t in topics]
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def on(self, topic_part: str) -> list[tuple[float, str, bytes, bool]]:
        return [m for m in self.messages if topic_part in m[1]]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
