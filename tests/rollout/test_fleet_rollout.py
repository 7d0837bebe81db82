"""A rollout end to end with real processes: one Mosquitto, one ``edge-app fleet`` and three ``edge-app run``
devices (cam1..cam3) on the synthetic scene, whose frames carry their exact labels, so the A/B numbers come
without a person labelling (small frames, 5 fps: the whole test stays light on CI's two cores).

The devices run a weakened build of the demo detector (tests/rollout/builds.py). In order:

1. A forged command (signed with another key) and an unsigned one, published on cam3's command topic over
   the real broker, are refused and logged with their reason; nothing is written.
2. ``POST /api/rollouts`` with the demo detector itself (better) to the group "cam", canary 0.3: cam1 alone
   gets it first; the fleet is killed (SIGKILL) while cam1 runs it in shadow and started again: the rollout,
   kept in the fleet's store, goes on; once cam1 promoted, cam2 and cam3 get it; half-way through their
   downloads (the fleet serves artifacts at 2 MiB/s here) cam2 and the fleet are killed (SIGKILL) and started
   again: cam2 resumes from its ``.part``, cam3's broken download is tried again and resumes too. The rollout
   ends ``done`` with the candidate promoted on every device, each command applied once.
3. A worse build rolled out to every device at once (canary 1.0): rejected on each of them.

The fleet's store is PostgreSQL where Debian's server is installed (``make test`` installs it), else SQLite.

Labelled-frame budget: docs/rollouts.md states 100 labelled frames per decision; these devices decide on 40
(``rollout.frames``; a 0.2 F1 gap is decided on 40 frames: tests/rollout/test_device.py), so each decision
is asserted within [40, 100]. The phases' durations are printed (``pytest -s``)."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge_app.events.schema import utc_now
from edge_app.rollout.commands import Signer, have_ed25519, manifest_digest
from tests.events.broker import PASSWORD, USER, Broker, require_mosquitto
from tests.fleet.postgres import Postgres, require_postgres
from tests.gst_helpers import free_port
from tests.rollout import builds
from tests.test_app import http_get

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fleet-rollout-t0ken"
FRAMES = 40          # labelled frames per decision on these devices (docs/rollouts.md's budget: 100)
BUDGET = 100
RATE_KIB_S = 2048    # the fleet's download rate: a 9 MB model takes ~4 s, time to kill a device mid-way


def _wait(pred, seconds: float, step: float = 0.25, what: str = ""):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what or pred}")


def _tail(path: Path, n: int = 25) -> str:
    return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-n:]) if path.is_file() else ""


def _log(path: Path, event: str) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines() if path.is_file() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == event:
            out.append(entry)
    return out


class _Process:
    """A child process of the test: killed (as a power cut would) or stopped."""

    proc: subprocess.Popen | None = None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Fleet(_Process):
    def __init__(self, broker: Broker, folder: Path, store: str = "") -> None:
        self.broker, self.folder, self.port, self.store = broker, folder, free_port(), store
        folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        out = open(self.folder / f"fleet-{self.starts}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_app", "fleet", "--broker", self.broker.url, "--state", str(self.folder),
             "--http", f"127.0.0.1:{self.port}", "--token", TOKEN, "--signing-key", str(self.folder / "key"),
             "--download-kib-s", str(RATE_KIB_S), "--client-id", "fleet-under-test", "--log-format", "json",
             *(["--store", self.store] if self.store else [])],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _wait(lambda: (self.get("/api/fleet", quiet=True) or {}).get("collector", {}).get("state") == "connected",
              60, what=f"the fleet to connect\n{_tail(self.folder / f'fleet-{self.starts}.log')}")

    def get(self, path: str, quiet: bool = False) -> dict | None:
        try:
            code, body = http_get(f"http://127.0.0.1:{self.port}{path}{'&' if '?' in path else '?'}token={TOKEN}",
                                  timeout=5)
        except OSError:
            if quiet:
                return None
            raise
        return json.loads(body) if code == 200 else None

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {TOKEN}",
                                                             "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def rollout(self, rid: str) -> dict:
        return next((r for r in (self.get("/api/rollouts") or {"rollouts": []})["rollouts"] if r["id"] == rid),
                    {"state": None, "by_state": {}})



class Device(_Process):
    def __init__(self, name: str, folder: Path, broker: Broker, public_key: str, live: Path) -> None:
        self.name, self.folder, self.port = name, folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "config.toml"
        self.config.write_text(f"""
[source]
uri = "synthetic://"
width = 320
height = 240
fps = 5.0

[models.detector]
kind = "detector"
artifact = "{live}"
thresholds_file = "{live.with_suffix('.thresholds.json')}"

[output.http]
port = {self.port}

[output.mqtt]
enabled = true
url = "{broker.url}"
device_id = "{name}"
status_every_s = 1.0
keepalive_s = 5
ha_discovery = false

[labels]
sample_every = 0

[events]
file = "{folder / 'events.jsonl'}"
state_dir = "{folder / 'events'}"

[rollout]
state_dir = "{folder / 'rollout'}"
shadow_every = 1
shadow_share = 1.0
frames = {FRAMES}
watch_frames = 10
watch_s = 2.0
max_latency_ratio = 10.0  # latency is no reason here: a shared machine moves p50 2x
fleet_public_key = "{public_key}"
fleet_token = "{TOKEN}"

[logging]
file = "{folder / 'log.jsonl'}"
""")
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        out = open(self.folder / f"stdout-{self.starts}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(self.config),
                                      "--log-format", "json"], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def status(self) -> dict | None:
        try:
            code, body = http_get(f"http://127.0.0.1:{self.port}/status", timeout=5)
        except OSError:
            return None
        return json.loads(body) if code == 200 else None

    def candidate(self) -> dict:
        return ((self.status() or {}).get("models", {}).get("detector") or {}).get("candidate") or {}

    def events(self, kind: str, rollout: str) -> list[dict]:
        path = self.folder / "events.jsonl"
        lines = path.read_text().splitlines() if path.is_file() else []
        return [e for e in map(json.loads, lines) if e["type"] == kind and e.get("rollout") == rollout]



def _publish(broker: Broker, topic: str, payloads: list[bytes]) -> None:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"forger-{os.getpid()}")
    c.username_pw_set(USER, PASSWORD)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    for p in payloads:
        c.publish(topic, p, qos=1).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


@pytest.fixture()
def broker(tmp_path):
    require_mosquitto()
    if not have_ed25519():
        pytest.skip("needs the cryptography package (Ed25519 commands)")
    b = Broker(tmp_path / "broker")
    yield b
    b.stop()


@pytest.fixture()
def store():
    """The fleet's store: PostgreSQL (Debian's server, started here) where it is installed, so the rollout
    lives in the shared store across the fleet's restart; else the embedded SQLite (same interface)."""
    try:
        require_postgres()
    except pytest.skip.Exception as exc:
        print(f"fleet store: SQLite ({exc})")
        yield ""
        return
    server = Postgres()
    yield server.url
    server.close()


def test_a_canary_rollout_over_a_real_fleet_survives_kills_and_a_worse_build_is_rejected(tmp_path, broker, store):
    t0 = time.monotonic()
    marks: list[tuple[str, float]] = []

    def mark(what: str) -> None:
        marks.append((what, time.monotonic() - t0))

    weak = builds.weakened(tmp_path / "weak" / "detector.onnx", 0.2)          # what the devices run
    good = builds.copy(tmp_path / "good" / "detector.onnx")                   # the demo detector: better
    worse = builds.weakened(tmp_path / "worse" / "detector.onnx", 0.3, seed=1)  # worse than the demo detector
    fleet = Fleet(broker, tmp_path / "fleet", store)
    fleet.start()
    key = fleet.get("/api/rollouts/key")
    assert key["alg"] == "ed25519" and key["public_key"]
    devices = {n: Device(n, tmp_path / n, broker, key["public_key"], weak) for n in ("cam1", "cam2", "cam3")}
    try:
        for d in devices.values():
            d.start()
        _wait(lambda: {x["device"] for x in fleet.get("/api/fleet")["devices"] if x["online"] and x["status"]}
              >= set(devices), 120, what="three devices online with a status in the fleet")
        mark("fleet and 3 devices up")

        # 1. forged and unsigned commands over the real broker: refused, logged with the reason, nothing written
        cam3 = devices["cam3"]
        man = {"model": {"sha256": hashlib.sha256(good.read_bytes()).hexdigest(), "size": good.stat().st_size},
               "meta": {"sha256": hashlib.sha256(good.with_suffix(".json").read_bytes()).hexdigest(),
                        "size": good.with_suffix(".json").stat().st_size}, "thresholds": None}
        doc = {"v": 1, "id": "forged-cam3", "rollout": "forged", "device": "cam3", "model": "detector",
               "action": "candidate", "url": f"http://127.0.0.1:{fleet.port}", "issued": utc_now(),
               "artifact": {"digest": manifest_digest(man), "manifest": man}}
        forged = Signer(private_key=os.urandom(32)).sign(doc)
        _publish(broker, "edge/cam3/command", [json.dumps(forged).encode(), json.dumps(doc).encode()])
        refused = _wait(lambda: (r := (cam3.status() or {}).get("rollout", {}).get("refused", {})).get("bad_signature")
                        and r.get("unsigned") and r, 30, what="cam3 to refuse both")
        logged = {e["reason"] for e in _log(cam3.folder / "log.jsonl", "command_refused")}
        assert {"bad_signature", "unsigned"} <= logged, logged
        assert not (cam3.folder / "rollout" / "artifacts").exists()                   # nothing downloaded
        commands = cam3.folder / "rollout" / "commands.json"
        assert not commands.exists() or "forged-cam3" not in commands.read_text()     # nothing recorded
        assert cam3.candidate() == {}                                                  # nothing runs
        mark(f"forged and unsigned commands refused ({refused})")

        # 2. the better build: canary first, the fleet killed and restarted mid-rollout, a device killed mid-download
        code, r = fleet.post("/api/rollouts", {"model": "detector", "artifact": str(good), "group": "cam",
                                              "canary": 0.3})
        assert code == 201, r
        rid, digest = r["id"], r["digest"]
        assert r["canary"] == ["cam1"] and r["devices"] == ["cam1", "cam2", "cam3"]
        _wait(lambda: devices["cam1"].candidate().get("rollout") == rid
              and devices["cam1"].candidate()["state"] == "shadow", 90, what="cam1 to run the candidate in shadow")
        mark("canary cam1 in shadow")
        fleet.kill()                                                 # mid-rollout, no clean stop
        assert all(d.candidate().get("rollout") != rid for d in (devices["cam2"], devices["cam3"]))  # not yet theirs
        fleet.start()
        mark("fleet killed (SIGKILL) and started again")
        cam2, cam3 = devices["cam2"], devices["cam3"]
        part = cam2.folder / "rollout" / "artifacts" / digest / "model.onnx.part"
        part3 = cam3.folder / "rollout" / "artifacts" / digest / "model.onnx.part"
        size = good.stat().st_size

        def midway(p: Path) -> bool:
            return p.is_file() and 1_000_000 < p.stat().st_size < size - 2_000_000

        _wait(lambda: midway(part) and midway(part3), 120, step=0.05,
              what="cam2 and cam3 to be half-way through their downloads")
        cam2.kill()                       # the device killed mid-download ...
        fleet.kill()                      # ... and the fleet again, under cam3's download
        assert part.is_file() and not part.with_name("model.onnx").exists()   # a half file, never the model
        half = part.stat().st_size
        mark(f"cam2 and the fleet killed (SIGKILL) mid-download, cam2 at {half} of {size} bytes")
        cam2.start()
        fleet.start()
        mark("cam2 and the fleet started again")
        done = _wait(lambda: (x := fleet.rollout(rid))["state"] == "done" and x, 180, step=0.5,
                     what=f"rollout {rid} done: {json.dumps(fleet.rollout(rid))[:1500]}")
        mark("rollout done: promoted on every device")
        assert set(done["by_state"].get("promoted", []) + done["by_state"].get("kept", [])) == set(devices), done
        phases = [h[1] for h in done["history"]]
        assert phases == ["canary", "rest", "done"], done["history"]
        for name, m in done["metrics"].items():
            assert m["decision"]["verdict"] == "promote", (name, m)
            assert FRAMES <= m["frames"] <= BUDGET, (name, m["frames"])
            assert m["delta_interval"][0] > -0.02 and m["candidate"] > m["current"], (name, m)
        for name, d in devices.items():
            assert f"{digest}/model.onnx" in d.status()["models"]["detector"]["model"]   # the downloaded build runs
            assert len(d.events("model_candidate", rid)) == 1 and len(d.events("model_promoted", rid)) == 1, name
        if store:  # the rollout is a row of the shared database, which the restarted fleet carried on
            import psycopg
            with psycopg.connect(store) as db:
                assert db.execute("SELECT state FROM rollouts WHERE id = %s", (rid,)).fetchone() == ("done",)
        promoted_at = devices["cam1"].events("model_promoted", rid)[0]["time"]
        assert all(devices[n].events("model_candidate", rid)[0]["time"] > promoted_at for n in ("cam2", "cam3"))
        resumed = [e for e in _log(cam2.folder / "log.jsonl", "artifact_downloaded") if e["file"] == "model.onnx"]
        assert len(resumed) == 1 and resumed[0]["resumed_from"] >= half > 0, resumed   # from its .part, not from 0
        model = cam2.folder / "rollout" / "artifacts" / digest / "model.onnx"
        assert hashlib.sha256(model.read_bytes()).hexdigest() == hashlib.sha256(good.read_bytes()).hexdigest()
        # cam3 lived through the fleet's death: its download broke, was tried again and resumed
        broke = _log(cam3.folder / "log.jsonl", "artifact_download_interrupted")
        assert broke and broke[0]["reason"] in ("truncated", "unreachable"), broke
        resumed = [e for e in _log(cam3.folder / "log.jsonl", "artifact_downloaded") if e["file"] == "model.onnx"]
        assert len(resumed) == 1 and resumed[0]["resumed_from"] > 1_000_000, resumed

        # 3. a worse build to every device at once: rejected on each
        _wait(lambda: all(d.candidate().get("state") == "kept" for d in devices.values()), 60,
              what="every promotion's watch to pass")
        code, r = fleet.post("/api/rollouts", {"model": "detector", "artifact": str(worse), "group": "cam",
                                              "canary": 1.0})
        assert code == 201 and r["canary"] == ["cam1", "cam2", "cam3"], r
        worse_id = r["id"]
        rejected = _wait(lambda: set((x := fleet.rollout(worse_id))["by_state"].get("rejected", [])) == set(devices)
                         and x["state"] == "halted" and x, 180, step=0.5, what=f"every device to reject {worse_id}")
        mark("worse build rejected on every device")
        for name, m in rejected["metrics"].items():
            assert m["decision"]["verdict"] == "reject" and FRAMES <= m["frames"] <= BUDGET, (name, m)
            assert m["delta"] < 0 and m["delta_interval"][0] <= -0.02, (name, m)   # the rule: may be worse
        for name, d in devices.items():
            assert f"{digest}/model.onnx" in d.status()["models"]["detector"]["model"]   # the better build stays
            assert len(d.events("model_rejected", worse_id)) == 1, name
    except BaseException:
        for d in devices.values():
            print(f"--- {d.name} log\n{_tail(d.folder / 'log.jsonl')}")
        print(f"--- fleet log\n{_tail(fleet.folder / f'fleet-{fleet.starts}.log')}")
        raise
    finally:
        for d in devices.values():
            d.stop()
        fleet.stop()
        print("\nrollout end to end, seconds since the start:")
        for what, at in marks:
            print(f"  {at:6.1f}  {what}")
