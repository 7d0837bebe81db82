"""Simulated devices for the fleet's tests and benchmark: many MQTT clients in one process, each
behaving as ``edge-app run`` with ``[output.mqtt]`` does on the wire: a retained Last Will "offline" and
"online" on connect (availability), the retained compact status every ``--status-every`` s, and events of
schema v1 at QoS 1 (every ``--snapshot-every``-th a track_end with its crop and frame JPEGs on
``snapshot/<id>/{crop,frame}``). ``--duplicate-every K`` sends every K-th event twice (at least once). ``--hostile F``: besides, a share F of
the events is followed by a hostile message (NaN / Infinity / 2**70 numbers, 4,000-deep JSON, an event
forged for another device, a 100 KB event, HTML counts in the status, a GIF as a snapshot), counted apart.

``python -m tests.fleet.devices --broker URL --count 100 --rate 10 --seconds 30``: prints "ready" once all
are connected, then at the end (or on SIGTERM) one JSON line: {"acked": {device: n}, "published": n, "duplicates": n}.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import cv2
import numpy as np

from edge_app.core.uri import parse_url
from edge_app.events.schema import make_event


def _jpeg(seed: int, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), size, interpolation=cv2.INTER_NEAREST)
    return cv2.imencode(".jpg", img)[1].tobytes()


class Device:
    def __init__(self, name: str, url: str, prefix: str, keepalive: int) -> None:
        import paho.mqtt.client as mqtt

        self.name, self.prefix = name, f"{prefix}/{name}"
        _, host, port, user, password = parse_url(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{name}", protocol=mqtt.MQTTv311)
        if user:
            self.client.username_pw_set(user, password)
        self.client.will_set(f"{self.prefix}/availability", "offline", qos=1, retain=True)
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.seq = self.published = self.hostile = 0
        # paho's own record of each event's PUBACK (a lock of ours around publish() would invert the order
        # of paho's lock, which it holds while calling on_publish: a deadlock)
        self._infos: list = []
        self.client.connect(host, port, keepalive=keepalive)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        client.publish(f"{self.prefix}/availability", "online", qos=1, retain=True)
        self.connected.set()

    @property
    def acked(self) -> int:
        return sum(i.is_published() for i in self._infos)

    @property
    def pending(self) -> bool:
        return not all(i.is_published() for i in self._infos)

    def status(self, fps: float, frames: int) -> None:
        doc = {"device": self.name, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "fps": fps,
               "health": "ok", "source": {"uri": "synthetic://", "state": "playing", "reconnects": 0},
               "rolling": {"detector": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "frames": frames}},
               "counts": {"lines": {"door": {"total_in": self.seq // 2, "total_out": self.seq // 3}},
                          "zones": {"till": {"total": self.seq // 4}}}}
        self.client.publish(f"{self.prefix}/status", json.dumps(doc), qos=0, retain=True)

    def event(self, snapshot: bool, duplicate: bool) -> None:
        self.seq += 1
        box = [10.0, 20.0, 110.0, 220.0]
        if snapshot:
            e = make_event("track_end", self.seq, self.name, "main", model="detector", **{"class": "person"},
                           score=0.87, box=box, track_id=self.seq, duration_s=4.2)
        else:
            e = make_event("line_crossed", self.seq, self.name, "main", line="door", direction="in",
                           model="detector", **{"class": "person"}, track_id=self.seq, score=0.8, box=box)
        payload = json.dumps(e)
        for _ in range(2 if duplicate else 1):
            self._infos.append(self.client.publish(f"{self.prefix}/events", payload, qos=1))
            self.published += 1
        if snapshot:
            self.client.publish(f"{self.prefix}/snapshot/{e['id']}/crop", _jpeg(self.seq, (64, 128)), qos=1)
            self.client.publish(f"{self.prefix}/snapshot/{e['id']}/frame", _jpeg(self.seq + 1, (320, 240)), qos=1)

    def attack(self, k: int) -> None:
        """One hostile message (the k-th kind, in turn): the fleet must refuse it alone."""
        good = json.dumps(make_event("counts", self.seq + 1, self.name, "main", lines={}, zones={}))
        topic, payload = [
            ("events", good.replace(f'"seq": {self.seq + 1}', '"seq": Infinity')),
            ("events", good.replace('"lines": {}', '"lines": {"a": NaN}')),
            ("events", good.replace(f'"seq": {self.seq + 1}', f'"seq": {2**70}')),
            ("events", "[" * 4000 + "]" * 4000),
            ("events", json.dumps(make_event("counts", 1, "someone-else", "main", lines={}, zones={}))),
            ("events", good.replace('"lines": {}', '"lines": {"x": "' + "x" * 100_000 + '"}')),
            ("status", json.dumps({"device": self.name, "counts": {"lines": {"a": {"total_in": "<img src=x>"}}}})),
            (f"snapshot/{self.name}-{self.seq}/crop", "GIF89a"),
        ][k % 8]
        self.client.publish(f"{self.prefix}/{topic}", payload, qos=1)
        self.hostile += 1

    def close(self) -> None:
        """A clean goodbye: "offline" (retained), then DISCONNECT (no Will)."""
        self.client.publish(f"{self.prefix}/availability", "offline", qos=1, retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--broker", required=True)
    p.add_argument("--prefix", default="edge")
    p.add_argument("--name", default="sim", help="devices are <name>-000, <name>-001, ...")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--rate", type=float, default=2.0, help="events per second per device")
    p.add_argument("--status-every", type=float, default=1.0)
    p.add_argument("--snapshot-every", type=int, default=5, help="every K-th event has snapshots (0 = none)")
    p.add_argument("--duplicate-every", type=int, default=0)
    p.add_argument("--seconds", type=float, default=3600)
    p.add_argument("--keepalive", type=int, default=5)
    p.add_argument("--hostile", type=float, default=0.0, help="share of events followed by a hostile message")
    a = p.parse_args(argv)
    devices = [Device(f"{a.name}-{i:03d}", a.broker, a.prefix, a.keepalive) for i in range(a.count)]
    for d in devices:
        if not d.connected.wait(30):
            print(f"{d.name} did not connect", file=sys.stderr)
            return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # SIGTERM ends the run: the summary still comes
    print("ready", flush=True)
    start, cpu = time.monotonic(), time.process_time()
    tick = 1.0 / a.rate if a.rate > 0 else a.status_every
    n, last_status = 0, -1e9
    rng, attacks = np.random.default_rng(0), 0
    while time.monotonic() - start < a.seconds and not stop.is_set():
        now = time.monotonic()
        if now - last_status >= a.status_every:
            last_status = now
            for d in devices:
                d.status(1.0 / tick, n)
        if a.rate > 0:
            n += 1
            for d in devices:
                d.event(a.snapshot_every > 0 and n % a.snapshot_every == 0,
                        a.duplicate_every > 0 and n % a.duplicate_every == 0)
                if a.hostile > 0 and rng.random() < a.hostile:
                    d.attack(attacks)
                    attacks += 1
        time.sleep(max(0.0, start + n * tick - time.monotonic()) if a.rate > 0 else tick)
    end = time.monotonic() + 30
    while time.monotonic() < end and any(d.pending for d in devices):
        time.sleep(0.05)
    for d in devices:
        d.close()
    print(json.dumps({"acked": {d.name: d.acked for d in devices}, "published": sum(d.published for d in devices),
                      "sent": {d.name: d.seq for d in devices}, "cpu_s": time.process_time() - cpu,
                      "hostile": sum(d.hostile for d in devices),
                      "run_s": time.monotonic() - start}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
