"""Event benchmarks with a real Mosquitto on loopback (started here, as the tests do):

1. latency: an event emitted on the device (EventBus.emit: outbox insert) to its arrival at a subscriber
   in another process, p50/p99 ms, at 10 events/s;
2. throughput: one device at 1,000 events/s for 10 s: lost events (goal 0) and latency p50/p99.

Both sides read CLOCK_MONOTONIC (the event's ``mono``), system-wide on Linux.
Run: `python tests/benchmarks/bench_events.py`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

_SUB = """
import json, sys, time
import paho.mqtt.client as mqtt
got = []
def on_message(c, u, m):
    got.append((time.monotonic(), json.loads(m.payload)["mono"], json.loads(m.payload)["seq"]))
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub")
c.username_pw_set(sys.argv[2], sys.argv[3])
c.on_message = on_message
c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("edge/bench/events", qos=1)
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_start()
print("ready", flush=True)
sys.stdin.readline()
time.sleep(float(sys.argv[4]))
c.loop_stop()
print(json.dumps(got))
"""


def run(rate: float, seconds: float) -> dict:
    from edge_app.config.schema import MqttConfig
    from edge_app.events.bus import EventBus
    from edge_app.events.mqtt import MqttOutput
    from edge_app.events.outbox import Outbox
    from tests.events.broker import PASSWORD, USER, Broker

    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker")
        sub = subprocess.Popen([sys.executable, "-c", _SUB, str(broker.port), USER, PASSWORD, "3"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert sub.stdout.readline().strip() == "ready"
        outbox = Outbox(Path(tmp) / "outbox.sqlite")
        mqtt = MqttOutput(MqttConfig(enabled=True, url=broker.url, device_id="bench", ha_discovery=False),
                          "bench", outbox)
        bus = EventBus("bench", "main", outbox, "edge/bench")
        deadline = time.monotonic() + 10
        while mqtt.state != "connected" and time.monotonic() < deadline:
            time.sleep(0.05)
        n = int(rate * seconds)
        t0 = time.monotonic()
        emit_ms = []
        for i in range(n):
            target = t0 + i / rate
            while time.monotonic() < target:
                time.sleep(max(0.0, min(0.001, target - time.monotonic())))
            a = time.perf_counter()
            bus.emit("line_crossed", line="door", direction="in", model="det", track_id=i, **{"class": "person"})
            emit_ms.append((time.perf_counter() - a) * 1e3)
        sub.stdin.write("\n")
        sub.stdin.flush()
        got = json.loads(sub.communicate(timeout=60)[0].strip().splitlines()[-1])
        mqtt.close()
        broker.stop()
    seqs = {s for _, _, s in got}
    lat = np.array([(r - m) * 1e3 for r, m, _ in got])
    return {"rate": rate, "events": n, "received": len(seqs), "lost": n - len(seqs), "duplicates": len(got) - len(seqs),
            "latency_p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "latency_p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
            "emit_p50_ms": float(np.percentile(emit_ms, 50)), "emit_p99_ms": float(np.percentile(emit_ms, 99))}


def emit_cost(rounds: int = 6, per_round: int = 40) -> dict:
    """What a track's events cost the thread that emits them (the inference thread, live): each event a
    track_end with its snapshot (crop + whole 1920x1080 frame as JPEGs), stored by emit itself (the old
    way: ``writer=False``) or queued for the events thread; rounds alternate, same process."""
    import cv2

    from edge_app.events.bus import EventBus
    from edge_app.events.outbox import Outbox
    from edge_app.events.snapshots import SnapshotStore

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8), (9, 9), 0)
    box = np.array([600, 300, 900, 900], np.float32)
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            threaded = r % 2 == 1
            folder = Path(tmp) / f"r{r}"
            bus = EventBus("bench", "main", Outbox(folder / "outbox.sqlite"), "edge/bench",
                           snapshots=SnapshotStore(folder / "snapshots"), writer=threaded)
            for i in range(per_round):
                t0 = time.perf_counter()
                bus.emit("track_end", snapshot=(frame, box), model="det", track_id=i, score=0.9,
                         box=box.tolist(), duration_s=1.0, **{"class": "person"})
                times[threaded].append(time.perf_counter() - t0)
            bus.close()
    sync, queued = (np.median(times[k]) * 1e3 for k in (False, True))
    return {"emit_sync_ms": round(float(sync), 3), "emit_queued_ms": round(float(queued), 3),
            "ratio": round(float(queued / sync), 4), "events": rounds * per_round}


def main() -> int:
    cost = emit_cost()
    print(f"a track_end with its 1080p snapshot, on the emitting (inference) thread: {cost['emit_sync_ms']:.2f} ms "
          f"stored there, {cost['emit_queued_ms']:.3f} ms queued for the events thread ({cost['ratio']:.4f}x)")
    rows = [run(10, 20), run(1000, 10)]
    for r in rows:
        print(f"{r['rate']:>6.0f} events/s: {r['received']}/{r['events']} received, lost {r['lost']}, "
              f"latency p50 {r['latency_p50_ms']:.1f} ms p99 {r['latency_p99_ms']:.1f} ms; emit on the device "
              f"p50 {r['emit_p50_ms']:.3f} ms p99 {r['emit_p99_ms']:.3f} ms")
    print("SUMMARY events")
    print(json.dumps({"benchmark": "events", "rows": rows, "emit_cost": cost}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
