"""The MQTT output (paho-mqtt >= 2): events from the durable outbox at QoS 1, retained status and
availability, Home Assistant discovery. One thread owns the client; nothing here blocks the pipeline.

Connection: ``mqtt://`` or ``mqtts://`` (TLS, system or given CA, optional client certificate),
user/password; the Last Will publishes a retained "offline" on ``<prefix>/<device>/availability`` when
the device vanishes, "online" is published (retained) on every connect. A broker that is down, refuses
the password or presents a certificate the CA does not sign is a state (``state``, ``last_error`` in
/status and the log, with the reason), retried with back-off (1 s doubling to 30 s), never a reason to stop.

Delivery: at least once. Messages leave the outbox in order, up to ``window`` unacknowledged at a time,
and are deleted when the broker acknowledged them (PUBACK); after a reconnect everything not acknowledged
is sent again, in order, so a subscriber de-duplicates by event ``id``.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any

from ..config.schema import MqttConfig
from ..core.uri import parse_url
from .outbox import Outbox

log = logging.getLogger("edge_app.mqtt")


def device_name(configured: str) -> str:
    name = configured or socket.gethostname()
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "device"


class MqttOutput:
    name = "mqtt"

    def __init__(self, cfg: MqttConfig, device: str, outbox: Outbox, resolve: Any = None, window: int = 64) -> None:
        """resolve: turns config paths (CA, certificate, key) into absolute ones."""
        import paho.mqtt.client as mqtt

        self.cfg, self.device, self.outbox, self.window = cfg, device, outbox, window
        self.prefix = f"{cfg.topic_prefix}/{device}"
        self.topics = {k: f"{self.prefix}/{k}" for k in ("events", "status", "availability")}
        tls, self.host, self.port, user, password = parse_url(cfg.url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id or f"edge-{device}",
                                  protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        user, password = cfg.username or user, cfg.password or password
        if user:
            self.client.username_pw_set(user, password or None)
        if tls:
            r = resolve or (lambda p: p)
            self.client.tls_set(ca_certs=str(r(cfg.ca_file)) if cfg.ca_file else None,
                                certfile=str(r(cfg.cert_file)) if cfg.cert_file else None,
                                keyfile=str(r(cfg.key_file)) if cfg.key_file else None)
        self.client.will_set(self.topics["availability"], "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        # a fleet's commands (<prefix>/<device>/command, retained, QoS 1): handed over as bytes, checked by
        # whoever takes them (edge_app.rollout.agent); None = not subscribed
        self.on_command: Any = None
        self.state, self.last_error = "connecting", ""
        self.sent = self.acked = self.connects = 0
        self._connected = threading.Event()
        self._inflight: dict[int, int] = {}   # mid -> outbox message number
        self._last_sent = 0                   # outbox number of the last message handed to the client
        self._drained_at: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._status: dict[str, Any] | None = None
        self._discovery: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    # -- the pipeline's side ---------------------------------------------------------------------------
    def write(self, image: Any, frame: Any) -> None:
        """An output of the pipeline's frames: MQTT carries events, not frames."""

    def publish_status(self, status: dict[str, Any]) -> None:
        """The latest status, sent retained by the MQTT thread (only the newest counts)."""
        with self._lock:
            self._status = status

    def set_discovery(self, messages: list[tuple[str, str]]) -> None:
        """Home Assistant discovery configs (topic, JSON), published retained on every connect."""
        with self._lock:
            self._discovery = list(messages)

    def describe(self) -> dict[str, Any]:
        return {"state": self.state, "broker": f"{self.host}:{self.port}", "last_error": self.last_error,
                "outbox": len(self.outbox), "dropped": self.outbox.dropped, "sent": self.sent, "acked": self.acked,
                "connects": self.connects}

    @property
    def url(self) -> str:
        return f"{self.cfg.url.split('@')[-1] if '@' in self.cfg.url else self.cfg.url} ({self.prefix})"

    # -- callbacks (the MQTT thread) ---------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.state, self.last_error = "refused", f"the broker refused the connection: {reason}"
            return
        self.connects += 1
        self.state, self.last_error = "connected", ""
        client.publish(self.topics["availability"], "online", qos=1, retain=True)
        with self._lock:
            discovery = list(self._discovery)
        for topic, payload in discovery:
            client.publish(topic, payload, qos=1, retain=True)
        if self.on_command is not None:
            client.subscribe(f"{self.prefix}/command", qos=1)
        self._connected.set()
        log.info("mqtt: connected to %s:%d as %s", self.host, self.port, self.device)

    def subscribe_commands(self, callback: Any) -> None:
        """Take the fleet's commands from now on (subscribed on every connect; now too if connected)."""
        self.on_command = callback
        if self._connected.is_set():
            self.client.subscribe(f"{self.prefix}/command", qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if self.on_command is not None and msg.topic == f"{self.prefix}/command":
            self.on_command(msg.payload)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if self.state == "connected":
            self.state, self.last_error = "disconnected", f"lost the broker ({reason})"
            log.warning("mqtt: %s", self.last_error)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        n = self._inflight.pop(mid, None)
        if n is not None:
            self.outbox.ack(n)
            self.acked += 1

    # -- the thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set() and not self._closing.is_set():
            if not self._connect():
                log.warning("mqtt: %s; retrying in %.0f s", self.last_error, delay)
                if self._closing.wait(delay):
                    break
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            last_status = 0.0
            while not self._stop.is_set():
                rc = self.client.loop(timeout=0.01)  # short: an event waits at most this for the thread
                if rc != 0 or self.state == "refused":
                    break
                if self._closing.is_set():
                    self._goodbye()
                    return
                if self._connected.is_set():
                    self._drain()
                    now = time.monotonic()
                    if now - last_status >= min(self.cfg.status_every_s, 1.0) and self._send_status():
                        last_status = now
            self._connected.clear()
            with self._lock:
                self._inflight.clear()   # not acknowledged: sent again, in order, after the reconnect
                self._last_sent = 0
                self._drained_at = None
            try:
                self.client.disconnect()
            except Exception:
                pass
            if self.state not in ("refused",):
                self.state = "disconnected"
            if not self._stop.is_set():
                if self.state == "refused":
                    log.error("mqtt: %s; retrying in %.0f s", self.last_error, delay)
                if self._closing.wait(delay):
                    break
                delay = min(delay * 2, 30.0)

    def _connect(self) -> bool:
        self.state = "connecting"
        try:
            self.client.connect(self.host, self.port, keepalive=self.cfg.keepalive_s)
            return True
        except Exception as exc:  # OSError (refused, unreachable), ssl.SSLError (certificate), ...
            self.state, self.last_error = "down", f"cannot connect to {self.host}:{self.port}: {exc}"
            return False

    def _drain(self) -> None:
        # Query the outbox only when something was added or acknowledgements made room (a reconnect
        # changes _last_sent): the loop runs 100 times a second.
        mark = (self.outbox.version, len(self._inflight), self._last_sent)
        if mark == self._drained_at:
            return
        while len(self._inflight) < self.window:
            rows = self.outbox.pending(self._last_sent, self.window - len(self._inflight))
            if not rows:
                self._drained_at = (self.outbox.version, len(self._inflight), self._last_sent)
                return
            for n, topic, payload, file, qos, retain in rows:
                if file is not None:
                    try:
                        with open(file, "rb") as fh:
                            payload = fh.read()
                    except OSError:  # a snapshot removed by its disk cap meanwhile: nothing to send
                        self.outbox.ack(n)
                        self._last_sent = n
                        continue
                info = self.client.publish(topic, payload, qos=qos, retain=retain)
                if info.rc != 0:  # not sent (the connection just went): it stays first in line
                    self._drained_at = None
                    return
                self._last_sent = n
                self.sent += 1
                if qos == 0:
                    self.outbox.ack(n)
                else:
                    self._inflight[info.mid] = n

    def _send_status(self) -> bool:
        with self._lock:
            status, self._status = self._status, None
        if status is None:
            return False
        self.client.publish(self.topics["status"], json.dumps(status, default=str), qos=0, retain=True)
        return True

    def _goodbye(self, timeout: float = 1.0) -> None:
        """On close: "offline" (retained), the acknowledgements in flight, a clean disconnect (no Will)."""
        self.state = "closing"  # the disconnect that follows is ours: not "lost the broker"
        info = self.client.publish(self.topics["availability"], "offline", qos=1, retain=True)
        end = time.monotonic() + timeout
        while (self._inflight or not info.is_published()) and time.monotonic() < end:
            self.client.loop(timeout=0.02)
        self.client.disconnect()
        self.client.loop(timeout=0.05)
        self.state = "closed"

    def close(self, timeout: float = 2.0) -> None:
        self._closing.set()
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(0.5)
