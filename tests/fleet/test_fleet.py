"""``edge-app fleet`` with a real Mosquitto: simulated devices (tests/fleet/devices.py) and a real
``edge-app run`` publish; the fleet page in the real browser (headless chromium) shows every device, and
marks one offline within its keep-alive when its process freezes (SIGSTOP: the TCP connection stays, only
the broker's keep-alive notices); every event is stored exactly once; two instances in one shared group
split the load; a fleet killed with SIGKILL misses nothing (its persistent session); the token rule is
the live page's. Bad and hostile messages: test_hostile.py."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.events.broker import Broker, Subscriber, require_mosquitto
from tests.events.test_mqtt import _app, _config, _stop
from tests.gst_helpers import free_port
from tests.test_app import http_get

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fleet-s3cret"


def _wait(pred, seconds: float, step: float = 0.2) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def _fleet(url: str, state: Path, port: int, *extra: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "edge_app", "fleet", "--broker", url, "--state", str(state),
                          "--http", f"127.0.0.1:{port}", "--log-format", "json", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    assert _wait(lambda: _api(port, quiet=True) is not None and _api(port)["collector"]["state"] == "connected", 30)
    return p


def _api(port: int, quiet: bool = False, token: str = TOKEN) -> dict | None:
    try:
        code, body = http_get(f"http://127.0.0.1:{port}/api/fleet?events=200&token={token}", timeout=2)
    except OSError:
        if quiet:
            return None
        raise
    return json.loads(body) if code == 200 else None


def _devices(port: int) -> dict[str, dict]:
    return {d["device"]: d for d in (_api(port) or {"devices": []})["devices"]}


def _sim(url: str, *args: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "tests.fleet.devices", "--broker", url, *args],
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline().strip() == "ready"
    return p


def _finish(p: subprocess.Popen) -> dict:
    out = p.communicate(timeout=60)[0]
    return json.loads(out.strip().splitlines()[-1])


def _ids(state: Path) -> list[str]:
    with sqlite3.connect(state / "fleet.sqlite") as db:
        return [r[0] for r in db.execute("SELECT id FROM events")]


@pytest.fixture()
def broker(tmp_path):
    require_mosquitto()
    b = Broker(tmp_path / "broker")
    yield b
    b.stop()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (make test installs it)")
def test_fleet_page_shows_every_device_and_one_offline_within_its_keepalive(tmp_path, broker):
    port = free_port()
    fleet = _fleet(broker.url, tmp_path / "fleet", port, "--token", TOKEN)
    app_port = free_port()
    app = _app(_config(tmp_path, f'url = "{broker.url}"', port=app_port))  # a real device: cam1
    many = _sim(broker.url, "--count", "3", "--rate", "4", "--duplicate-every", "3")
    lone = _sim(broker.url, "--name", "lone", "--count", "1", "--rate", "2", "--keepalive", "2")
    watch = Subscriber(broker, ["edge/+/availability"])    # an independent witness of the Will
    try:
        assert http_get(f"http://127.0.0.1:{port}/api/fleet")[0] == 401        # the token rule
        names = {"sim-000", "sim-001", "sim-002", "lone-000", "cam1"}
        assert _wait(lambda: names <= {n for n, d in _devices(port).items() if d["online"] and d["status"]}, 60), \
            _devices(port)
        lone.send_signal(signal.SIGSTOP)                  # frozen: no DISCONNECT, no FIN, no more PINGREQ
        frozen = time.monotonic()
        assert _wait(lambda: not _devices(port)["lone-000"]["online"], 20, step=0.05)
        seen = time.monotonic()
        will = [m[0] for m in watch.on("lone-000/availability") if m[2] == b"offline"]
        # The broker publishes the Will 1.5 x keep-alive after the last packet, checked every 6 s by
        # Mosquitto 2.0 (keepalive__check): 3 s to 9 s here; the fleet adds its own lag to that.
        assert will and 1.5 * 2 - 0.6 <= will[0] - frozen <= 1.5 * 2 + 6 + 1.5, will[0] - frozen
        assert seen - will[0] < 1.5, f"the fleet showed the Will {seen - will[0]:.2f} s after it arrived"
        shot = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=5000", "--dump-dom",
                               f"http://127.0.0.1:{port}/?token={TOKEN}"], capture_output=True, text=True, timeout=90)
        many.terminate()
        sims = _finish(many)
        assert _wait(lambda: all(_devices(port)[n]["events"] == sims["sent"][n] for n in sims["sent"]), 20)
        cam1 = _devices(port)["cam1"]
        assert cam1["online"] and cam1["status"]["fps"] > 0 and cam1["status"]["source"]["state"] == "playing"
        view = _api(port)
        snap = next(e for e in view["events"] if e["snapshots"])
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/{snap['snapshots']['crop']}?token={TOKEN}").read()
    finally:
        watch.close()
        lone.send_signal(signal.SIGCONT)
        lone.kill()
        many.kill()
        _stop(app)
        fleet.send_signal(signal.SIGTERM)
        fleet_log = fleet.communicate(timeout=20)[0]
    dom = shot.stdout
    # what the page's script rendered from /api/fleet, in a real browser
    assert "4 of 5 devices online" in dom, dom[:3000]
    assert "data-device=\"lone-000\">offline" in dom
    for n in names - {"lone-000"}:
        assert f"data-device=\"{n}\">online" in dom
    assert "class=\"snap\"" in dom and "track_end" in dom and "line_crossed" in dom
    # every simulated event exactly once, in the store and on the page's API
    for n, sent in sims["sent"].items():
        d = {x["device"]: x for x in view["devices"]}[n]
        assert d["events"] == sent and d["last_seq"] == sent
    assert view["collector"]["duplicates"] >= 1                       # --duplicate-every sent some twice
    ids = _ids(tmp_path / "fleet")
    assert len(ids) == len(set(ids))
    assert body[:2] == b"\xff\xd8"                     # a snapshot the page shows, behind the same token
    assert '"event": "fleet_stopped"' in fleet_log


def test_two_instances_split_the_load_and_a_killed_fleet_misses_nothing(tmp_path, broker):
    a, b = tmp_path / "a", tmp_path / "b"
    pa, pb = free_port(), free_port()
    fa = _fleet(broker.url, a, pa, "--client-id", "fleet-a")
    fb = _fleet(broker.url, b, pb, "--client-id", "fleet-b")
    sim = _sim(broker.url, "--count", "2", "--rate", "20", "--seconds", "8", "--snapshot-every", "0")
    try:
        time.sleep(2)
        fb.kill()                                       # SIGKILL: its session stays on the broker
        fb.wait(10)
        time.sleep(2)
        fb = _fleet(broker.url, b, pb, "--client-id", "fleet-b")
        sent = _finish(sim)["sent"]
        total = sum(sent.values())
        assert _wait(lambda: len(set(_ids(a)) | set(_ids(b))) == total, 30)
        time.sleep(1)
    finally:
        sim.kill()
        for f in (fa, fb):
            f.terminate()
            f.wait(20)
    ia, ib = set(_ids(a)), set(_ids(b))
    expected = {f"{d}-{s}" for d, n in sent.items() for s in range(1, n + 1)}
    assert ia | ib == expected
    assert len(ia) > total // 5 and len(ib) > total // 5, (len(ia), len(ib))   # both carried a share
    assert not ia & ib                                   # each event went to one instance


def test_without_state_the_fleet_keeps_one_folder_wherever_it_is_started(tmp_path, broker):
    """No --state: the XDG state folder (or the unit's StateDirectory), not the working folder, so a fleet
    restarted from elsewhere finds its devices and rollouts again."""
    xdg, elsewhere = tmp_path / "xdg", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "XDG_STATE_HOME": str(xdg), "PYTHONPATH": str(ROOT)}
    env.pop("STATE_DIRECTORY", None)
    p = subprocess.Popen([sys.executable, "-m", "edge_app", "fleet", "--broker", broker.url, "--http",
                          f"127.0.0.1:{free_port()}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         cwd=elsewhere, env=env)
    try:
        assert _wait(lambda: (xdg / "edge-app" / "fleet" / "fleet.sqlite").is_file(), 30)
        assert not (elsewhere / "var").exists() and list(elsewhere.iterdir()) == []
    finally:
        p.terminate()
        p.communicate(timeout=20)
