"""Fleet benchmark through one real Mosquitto on loopback (started here, as the tests do):

``--devices`` simulated devices in one process (tests/fleet/devices.py: one MQTT client each, the Last
Will, the retained status every second, events of schema v1 at QoS 1, every 10th a track_end with its crop
and frame JPEGs) publish for ``--seconds``; one ``edge-app fleet`` (a subprocess, as deployed) stores them.

Prints: events sent (acknowledged by the broker) and stored, lost (goal 0), duplicates; the fleet-view lag
(the event's time on the device to its commit in the fleet's SQLite, where the page reads it) p50/p99
(goal p99 < 1 s); CPU of the broker, the fleet and the simulated devices (% of one core, from /proc).
``--hostile F`` (the soak of issue 21): besides, a share F of the events is followed by a hostile message
(tests/fleet/devices.py ``attack``); while it runs the page and ``/api/fleet`` are fetched every 2 s.
Prints also: hostile messages sent and refused, the writer alive at the end, the page's answers and their
p99. Run: `python tests/benchmarks/bench_fleet.py [--devices 100 --rate 10 --seconds 30 --hostile 0.01]`.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its waited-for children), s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _api(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/fleet?events=1", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return None


class PagePoller(threading.Thread):
    """Fetches the fleet page and its JSON every 2 s while the benchmark runs: does it keep answering?"""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stop, self.times, self.failures = port, threading.Event(), [], 0

    def run(self) -> None:
        while not self.stop.wait(2.0):
            for path in ("/", "/api/fleet?events=50"):
                t0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                        r.read()
                    self.times.append(time.perf_counter() - t0)
                except OSError:
                    self.failures += 1


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def run(devices: int, rate: float, seconds: float, hostile: float = 0.0) -> dict:
    from tests.events.broker import Broker
    from tests.gst_helpers import free_port

    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker")
        port = free_port()
        state = Path(tmp) / "fleet"
        fleet = subprocess.Popen([sys.executable, "-m", "edge_app", "fleet", "--broker", broker.url, "--state",
                                  str(state), "--http", f"127.0.0.1:{port}", "--log-format", "json"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        end = time.monotonic() + 30
        while time.monotonic() < end and ((_api(port) or {}).get("collector") or {}).get("state") != "connected":
            time.sleep(0.2)
        sim = subprocess.Popen([sys.executable, "-m", "tests.fleet.devices", "--broker", broker.url, "--count",
                                str(devices), "--rate", str(rate), "--seconds", str(seconds), "--status-every", "1",
                                "--snapshot-every", "10", "--keepalive", "30", "--hostile", str(hostile)],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert sim.stdout.readline().strip() == "ready", "the simulated devices did not connect"
        cpu0 = {"broker": cpu_seconds(broker.proc.pid), "fleet": cpu_seconds(fleet.pid)}
        poller = PagePoller(port)
        poller.start()
        t0 = time.monotonic()
        summary = json.loads(sim.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1])
        wall = time.monotonic() - t0
        sent = sum(summary["sent"].values())
        end = time.monotonic() + 30  # let the fleet drain what is queued
        while time.monotonic() < end and (_api(port) or {}).get("collector", {}).get("queued", 1) > 0:
            time.sleep(0.2)
        time.sleep(1)
        cpu1 = {"broker": cpu_seconds(broker.proc.pid), "fleet": cpu_seconds(fleet.pid)}
        poller.stop.set()
        poller.join(10)
        view = _api(port) or {}
        health = _health(port)
        fleet.terminate()
        fleet.wait(30)
        broker.stop()
        with sqlite3.connect(state / "fleet.sqlite") as db:
            stored = int(db.execute("SELECT COALESCE(SUM(events), 0) FROM devices").fetchone()[0])
            rows = db.execute("SELECT time, received, stored, type FROM events").fetchall()
    from edge_app.events.schema import event_time

    made = np.array([event_time(r[0]) for r in rows], dtype=float)
    received = np.array([r[1] for r in rows], dtype=float)
    stored_at = np.array([r[2] for r in rows], dtype=float)
    # where the lag is: device + broker + the fleet's MQTT thread (made -> received), the fleet's writer queue
    upstream, queue = (received - made) * 1e3, (stored_at - received) * 1e3
    c = view.get("collector") or {}
    lag_ms = c.get("lag_ms") or {}
    busy = {n: round(100 * (cpu1[n] - cpu0[n]) / wall, 1) for n in ("broker", "fleet")}
    busy["devices"] = round(100 * summary["cpu_s"] / summary["run_s"], 1)  # the simulator's own count
    return {"devices": devices, "rate": rate, "seconds": seconds, "sent": sent, "stored": stored, "lost": sent - stored,
            "duplicates": c.get("duplicates"), "lag_p50_ms": lag_ms.get("p50"), "lag_p99_ms": lag_ms.get("p99"),
            "upstream_p50_ms": _q(upstream, 50), "upstream_p99_ms": _q(upstream, 99),
            "queue_p50_ms": _q(queue, 50), "queue_p99_ms": _q(queue, 99),
            "messages_per_s": round(sent * 1.2 / seconds + devices), "cpu_percent": busy,
            "hostile_sent": summary.get("hostile", 0), "refused": c.get("rejected"), "refused_by": c.get("rejected_by"),
            "writer_alive": health == 200, "page_answers": len(poller.times), "page_failures": poller.failures,
            "page_p99_ms": _q(np.array(poller.times) * 1e3, 99)}


def _q(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values.size else None


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--rate", type=float, default=10.0, help="events per second per device")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--hostile", type=float, default=0.0, help="share of events followed by a hostile message")
    a = p.parse_args()
    r = run(a.devices, a.rate, a.seconds, a.hostile)
    print(f"{r['devices']} devices x {r['rate']:.0f} events/s + 1 status/s for {r['seconds']:.0f} s: "
          f"{r['stored']}/{r['sent']} stored, lost {r['lost']}, duplicates {r['duplicates']}; fleet-view lag "
          f"p50 {r['lag_p50_ms']} ms p99 {r['lag_p99_ms']} ms; CPU % of one core: {r['cpu_percent']}")
    print(f"hostile: {r['hostile_sent']} sent, {r['refused']} refused {r['refused_by']}; writer alive "
          f"{r['writer_alive']}; page answered {r['page_answers']} times (p99 {r['page_p99_ms']} ms), "
          f"{r['page_failures']} failures")
    print("SUMMARY fleet")
    print(json.dumps({"benchmark": "fleet", "rows": [r]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
