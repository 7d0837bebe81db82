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
p99. ``--store postgresql --instances 2`` (issue 26): a PostgreSQL server started here (tests/fleet/postgres.py)
and that many fleet instances in one shared-subscription group writing into it; besides, whether every
instance's ``/api/fleet`` shows every device (one view). Run: `python tests/benchmarks/bench_fleet.py
[--devices 100 --rate 10 --seconds 30 --hostile 0.01] [--store postgresql --instances 2]`.
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


def run(devices: int, rate: float, seconds: float, hostile: float = 0.0, store: str = "sqlite",
        instances: int = 1) -> dict:
    from tests.events.broker import Broker
    from tests.gst_helpers import free_port

    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker")
        pg = None
        if store == "postgresql":
            from tests.fleet.postgres import Postgres
            pg = Postgres()
        ports = [free_port() for _ in range(instances)]
        port = ports[0]
        state = Path(tmp) / "fleet"
        fleets = [subprocess.Popen([sys.executable, "-m", "edge_app", "fleet", "--broker", broker.url, "--state",
                                    str(state) + (f"-{i}" if i else ""), "--http", f"127.0.0.1:{p}", "--log-format",
                                    "json", "--client-id", f"bench-fleet-{i}", *(["--store", pg.url] if pg else [])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
                  for i, p in enumerate(ports)]
        for p in ports:
            end = time.monotonic() + 30
            while time.monotonic() < end and ((_api(p) or {}).get("collector") or {}).get("state") != "connected":
                time.sleep(0.2)
        sim = subprocess.Popen([sys.executable, "-m", "tests.fleet.devices", "--broker", broker.url, "--count",
                                str(devices), "--rate", str(rate), "--seconds", str(seconds), "--status-every", "1",
                                "--snapshot-every", "10", "--keepalive", "30", "--hostile", str(hostile)],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert sim.stdout.readline().strip() == "ready", "the simulated devices did not connect"
        cpu0 = {"broker": cpu_seconds(broker.proc.pid), "fleet": sum(cpu_seconds(f.pid) for f in fleets)}
        poller = PagePoller(port)
        poller.start()
        t0 = time.monotonic()
        summary = json.loads(sim.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1])
        wall = time.monotonic() - t0
        sent = sum(summary["sent"].values())
        end = time.monotonic() + 30  # let the fleet drain what is queued
        while time.monotonic() < end and any((_api(p) or {}).get("collector", {}).get("queued", 1) > 0 for p in ports):
            time.sleep(0.2)
        time.sleep(1)
        cpu1 = {"broker": cpu_seconds(broker.proc.pid), "fleet": sum(cpu_seconds(f.pid) for f in fleets)}
        poller.stop.set()
        poller.join(10)
        views = [_api(p) or {} for p in ports]
        view = views[0]
        # one view: every instance's page lists every device, with the same totals
        one_view = all(len(v.get("devices", [])) == devices for v in views) and len(
            {json.dumps(sorted((d["device"], d["events"]) for d in v.get("devices", []))) for v in views}) == 1
        health = _health(port)
        per_instance = [sum((v.get("collector") or {}).get("events", {}).values()) for v in views]
        for f in fleets:
            f.terminate()
        for f in fleets:
            f.wait(30)
        broker.stop()
        if pg is not None:
            import psycopg
            with psycopg.connect(pg.url) as db:
                stored = int(db.execute("SELECT COALESCE(SUM(events), 0) FROM devices").fetchone()[0])
                rows = db.execute("SELECT time, received, stored, type FROM events").fetchall()
            pg.close()
        else:
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
    if instances > 1:  # each instance knows only its own share's lag: from the shared rows instead
        lag = stored_at - made
        lag_ms = {"p50": _q(lag * 1e3, 50), "p99": _q(lag * 1e3, 99)}
    busy = {n: round(100 * (cpu1[n] - cpu0[n]) / wall, 1) for n in ("broker", "fleet")}
    busy["devices"] = round(100 * summary["cpu_s"] / summary["run_s"], 1)  # the simulator's own count
    return {"store": store, "instances": instances, "one_view": one_view, "per_instance_events": per_instance,
            "events_per_s": round(stored / seconds, 1), "devices": devices, "rate": rate, "seconds": seconds, "sent": sent, "stored": stored, "lost": sent - stored,
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
    p.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--instances", type=int, default=1, help="fleet instances in one shared-subscription group")
    a = p.parse_args()
    r = run(a.devices, a.rate, a.seconds, a.hostile, a.store, a.instances)
    print(f"{r['devices']} devices x {r['rate']:.0f} events/s + 1 status/s for {r['seconds']:.0f} s: "
          f"{r['stored']}/{r['sent']} stored, lost {r['lost']}, duplicates {r['duplicates']}; fleet-view lag "
          f"p50 {r['lag_p50_ms']} ms p99 {r['lag_p99_ms']} ms; CPU % of one core: {r['cpu_percent']}")
    print(f"store {r['store']}, {r['instances']} instance(s): {r['events_per_s']} events/s stored, split "
          f"{r['per_instance_events']}, one view on every instance: {r['one_view']}")
    print(f"hostile: {r['hostile_sent']} sent, {r['refused']} refused {r['refused_by']}; writer alive "
          f"{r['writer_alive']}; page answered {r['page_answers']} times (p99 {r['page_p99_ms']} ms), "
          f"{r['page_failures']} failures")
    print("SUMMARY fleet")
    print(json.dumps({"benchmark": "fleet", "rows": [r]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
