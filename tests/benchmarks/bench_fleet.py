"""Fleet benchmark through one real Mosquitto on loopback (started here, as the tests do):

``--devices`` simulated devices in one process (tests/fleet/devices.py: one MQTT client each, the Last
Will, the retained status every second, events of schema v1 at QoS 1, every 10th a track_end with its crop
and frame JPEGs) publish for ``--seconds``; one ``edge-app fleet`` (a subprocess, as deployed) stores them.

Prints: events sent (acknowledged by the broker) and stored, lost (goal 0), duplicates; the fleet-view lag
(the event's time on the device to its commit in the fleet's SQLite, where the page reads it) p50/p99
(goal p99 < 1 s); CPU of the broker, the fleet and the simulated devices (% of one core, from /proc).
Run: `python tests/benchmarks/bench_fleet.py [--devices 100 --rate 10 --seconds 30]`.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
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


def run(devices: int, rate: float, seconds: float) -> dict:
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
                                "--snapshot-every", "10", "--keepalive", "30"],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert sim.stdout.readline().strip() == "ready", "the simulated devices did not connect"
        cpu0 = {"broker": cpu_seconds(broker.proc.pid), "fleet": cpu_seconds(fleet.pid)}
        t0 = time.monotonic()
        summary = json.loads(sim.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1])
        wall = time.monotonic() - t0
        sent = sum(summary["sent"].values())
        end = time.monotonic() + 30  # let the fleet drain what is queued
        while time.monotonic() < end and (_api(port) or {}).get("collector", {}).get("queued", 1) > 0:
            time.sleep(0.2)
        time.sleep(1)
        cpu1 = {"broker": cpu_seconds(broker.proc.pid), "fleet": cpu_seconds(fleet.pid)}
        view = _api(port) or {}
        fleet.terminate()
        fleet.wait(30)
        broker.stop()
        with sqlite3.connect(state / "fleet.sqlite") as db:
            stored = int(db.execute("SELECT COALESCE(SUM(events), 0) FROM devices").fetchone()[0])
            rows = db.execute("SELECT time, received, stored, type FROM events").fetchall()
    from edge_app.fleet.collector import event_time

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
            "messages_per_s": round(sent * 1.2 / seconds + devices), "cpu_percent": busy}


def _q(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values.size else None


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--rate", type=float, default=10.0, help="events per second per device")
    p.add_argument("--seconds", type=float, default=30.0)
    a = p.parse_args()
    r = run(a.devices, a.rate, a.seconds)
    print(f"{r['devices']} devices x {r['rate']:.0f} events/s + 1 status/s for {r['seconds']:.0f} s: "
          f"{r['stored']}/{r['sent']} stored, lost {r['lost']}, duplicates {r['duplicates']}; fleet-view lag "
          f"p50 {r['lag_p50_ms']} ms p99 {r['lag_p99_ms']} ms; CPU % of one core: {r['cpu_percent']}")
    print("SUMMARY fleet")
    print(json.dumps({"benchmark": "fleet", "rows": [r]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
