"""Events over MQTT with a real Mosquitto broker (password file, TLS listener with a CA made here): the
documented schema, availability and retained status, a refused password or an unknown CA as clear
states while the pipeline runs on, a broker away for 30 s and an app killed with SIGKILL losing nothing."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.events.broker import PASSWORD, USER, Broker, Subscriber, require_mosquitto
from tests.gst_helpers import free_port
from tests.test_app import http_get

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DETECTOR = ROOT / "edge_app" / "demo" / "detector.onnx"


def _config(tmp: Path, mqtt: str, *, port: int | None = None, state: Path | None = None) -> Path:
    port = port or free_port()
    path = tmp / "config.toml"
    path.write_text(f"""
[source]
uri = "synthetic://"
fps = 15.0
[models.det]
kind = "detector"
artifact = "{DETECTOR}"
[models.det.tracker]
enabled = true
[[analytics.lines]]
name = "middle"
points = [[320, 40], [320, 440]]
[[analytics.zones]]
name = "left"
points = [[0, 0], [320, 0], [320, 480], [0, 480]]
[output.http]
port = {port}
[output.mqtt]
enabled = true
device_id = "cam1"
status_every_s = 1.0
keepalive_s = 5
{mqtt}
[events]
state_dir = "{state or tmp / 'state'}"
counts_every_s = 3.0
file = "{tmp / 'events.jsonl'}"
[labels]
sample_every = 0
[logging]
file = ""
""")
    return path


def _app(config: Path, seconds: float = 120) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(config), "--max-seconds",
                             str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def _status(port: int) -> dict:
    for _ in range(100):
        try:
            code, body = http_get(f"http://127.0.0.1:{port}/status", timeout=1)
            if code == 200:
                return json.loads(body)
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("no status")


def _stop(p: subprocess.Popen) -> str:
    p.send_signal(signal.SIGTERM)
    return p.communicate(timeout=20)[0]


def _events(sub: Subscriber) -> list[dict]:
    return [json.loads(m[2]) for m in sub.on("/cam1/events")]


def _wait(pred, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture()
def broker(tmp_path):
    require_mosquitto()
    b = Broker(tmp_path / "broker", tls=True)
    yield b
    b.stop()


def test_events_status_availability_and_discovery(tmp_path, broker):
    sub = Subscriber(broker, ["edge/#", "homeassistant/#"])
    port = free_port()
    app = _app(_config(tmp_path, f'url = "{broker.url}"', port=port))
    try:
        assert _wait(lambda: {"track_new", "counts"} <= {e["type"] for e in _events(sub)}, 60), _events(sub)[:3]
        status = _status(port)
    finally:
        _stop(app)
    time.sleep(0.5)
    sub.close()
    assert status["events"]["mqtt"]["state"] == "connected" and status["events"]["outbox"] < 50
    events = _events(sub)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(e["id"] for e in events)) == len(events)
    for e in events:  # the common fields of schema version 1
        assert e["v"] == 1 and e["id"] == f"cam1-{e['seq']}" and e["device"] == "cam1" and e["stream"] == "main"
        assert e["time"].endswith("Z") and isinstance(e["mono"], float)
    new = next(e for e in events if e["type"] == "track_new")
    assert {"model", "class", "score", "box", "track_id", "snapshot"} <= set(new)
    crops = [m for m in sub.on(f"/cam1/snapshot/{new['id']}/crop")]
    assert crops and crops[0][2][:2] == b"\xff\xd8"  # the snapshot itself, on its own topic (JPEG)
    counts = next(e for e in events if e["type"] == "counts")
    assert "middle" in counts["lines"] and "left" in counts["zones"]
    avail = [m[2] for m in sub.on("/cam1/availability")]
    assert avail[0] == b"online" and avail[-1] == b"offline"  # said on connect, and on a clean stop
    st = [json.loads(m[2]) for m in sub.on("/cam1/status")]
    assert st and st[-1]["device"] == "cam1" and "fps" in st[-1] and "middle" in st[-1]["counts"]["lines"]
    discovery = {m[1] for m in sub.messages if m[1].startswith("homeassistant/")}
    assert "homeassistant/sensor/cam1/middle_in/config" in discovery and "homeassistant/binary_sensor/cam1/online/config" in discovery
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(l)["id"] for l in lines][:len(events)] == [e["id"] for e in events]  # the same events


@pytest.mark.parametrize("mqtt, reason", [
    (f'url = "mqtt://127.0.0.1:{{port}}"\nusername = "{USER}"\npassword = "wrong"', "refused"),
    ('url = "mqtts://127.0.0.1:{tls}"\nca_file = "{other}"', "certificate verify failed"),
])
def test_a_refused_connection_is_a_clear_state_and_the_pipeline_runs_on(tmp_path, broker, mqtt, reason):
    port = free_port()
    text = mqtt.format(port=broker.port, tls=broker.tls_port, other=broker.certs["other_ca"])
    app = _app(_config(tmp_path, text, port=port))
    try:
        time.sleep(8)
        s1 = _status(port)
        time.sleep(3)
        s2 = _status(port)
    finally:
        out = _stop(app)
    m = s2["events"]["mqtt"]
    assert m["state"] in ("refused", "down", "connecting") and reason in m["last_error"], m
    assert s2["counters"]["frames_out"] > s1["counters"]["frames_out"] > 10  # the pipeline never waited
    assert s2["events"]["outbox"] > 0          # events are kept for later, not lost
    assert out.count(reason) >= 2              # said in the log, and retried (with back-off)


def test_tls_with_the_right_ca(tmp_path, broker):
    sub = Subscriber(broker, ["edge/#"])
    app = _app(_config(tmp_path, f'url = "mqtts://127.0.0.1:{broker.tls_port}"\nusername = "{USER}"\n'
                                 f'password = "{PASSWORD}"\nca_file = "{broker.certs["ca"]}"'))
    try:
        assert _wait(lambda: len(_events(sub)) >= 2, 60)
    finally:
        _stop(app)
        sub.close()


def _persistent_broker(tmp_path):
    """A broker that keeps sessions over a restart, and a subscriber with a persistent session: the test
    sees everything the app published, whenever it was published."""
    b = Broker(tmp_path / "pbroker")
    conf = b.folder / "mosquitto.conf"
    conf.write_text(conf.read_text().replace("persistence false", f"persistence true\npersistence_location {b.folder}/"))
    b.stop()
    b.start()
    return b


def _durable_subscriber(b):
    import paho.mqtt.client as mqtt
    got: list[dict] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="durable-test-sub", clean_session=False)
    c.username_pw_set(USER, PASSWORD)
    c.on_message = lambda cl, u, m: got.append(json.loads(m.payload)) if m.topic.endswith("/events") else None
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("edge/cam1/events", qos=1)
    c.reconnect_delay_set(0.2, 1)
    c.connect("127.0.0.1", b.port)
    c.loop_start()
    return c, got


def test_broker_away_for_30_s_and_app_killed_lose_nothing(tmp_path):
    require_mosquitto()
    b = _persistent_broker(tmp_path)
    sub, got = _durable_subscriber(b)
    state = tmp_path / "state"
    port = free_port()
    cfg = _config(tmp_path, f'url = "{b.url}"', port=port, state=state)
    app = _app(cfg)
    try:
        assert _wait(lambda: len(got) >= 3, 60)
        b.stop()                                   # the broker goes away for 30 s
        time.sleep(30)
        away = _status(port)
        assert away["events"]["mqtt"]["state"] in ("down", "disconnected", "connecting") and away["events"]["outbox"] > 0
        b.start()
        assert _wait(lambda: _status(port)["events"]["outbox"] == 0, 40), _status(port)["events"]
        time.sleep(1)
        # now kill it hard with events pending: the broker away again, then SIGKILL
        b.stop()
        time.sleep(6)
        pending = _status(port)["events"]["outbox"]
        last_seq = _status(port)["events"]["events"]
        os.kill(app.pid, signal.SIGKILL)
        app.wait(10)
        assert pending > 0
        b.start()
        app = _app(cfg)                            # the outbox replays what was not acknowledged
        assert _wait(lambda: _status(port)["events"]["outbox"] == 0 and len(got) > 0, 60)
        time.sleep(2)
    finally:
        _stop(app) if app.poll() is None else None
        sub.loop_stop()
        sub.disconnect()
        b.stop()
    first: dict[str, dict] = {}
    order = []
    for e in got:                                  # de-duplicate by id (delivery is at least once)
        if e["id"] not in first:
            first[e["id"]] = e
            order.append(e["seq"])
    assert order == sorted(order), f"events out of order: {order}"
    assert order == list(range(1, max(order) + 1)), "an event id is missing"
    assert max(order) > sum(last_seq.values())  # the second run went on numbering after the first
