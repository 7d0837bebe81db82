"""Fleet commands and downloads on their own, against the fleet's real HTTP server: a forged, unsigned,
re-targeted or downgraded command is refused with its reason; a manifest whose digest is not the signed
one is refused; a download cut off keeps its .part and resumes with Range; a wrong digest or a longer file
is refused and nothing is written where the model would be."""
import hashlib
import json
import socket
import threading
import time

import pytest

from edge_app.fleet.rollouts import ArtifactStore, Rollouts
from edge_app.fleet.server import FleetServer
from edge_app.fleet.store import FleetStore
from edge_app.rollout.commands import CommandError, Signer, Verifier, have_ed25519, parse_command
from edge_app.rollout.download import DownloadError, fetch
from tests.rollout import builds

TOKEN = "fleet-token"


@pytest.fixture()
def fleet(tmp_path):
    store = FleetStore(tmp_path / "fleet.sqlite")
    store.devices = lambda: [{"device": "cam1", "status": {}}, {"device": "cam2", "status": {}}]  # type: ignore
    published: list[tuple[str, bytes]] = []
    signer = Signer(private_key=bytes(range(32))) if have_ed25519() else Signer(secret="s3")
    rollouts = Rollouts(store, ArtifactStore(tmp_path / "artifacts"), signer,
                        lambda t, p: published.append((t, p)), "http://127.0.0.1:0")
    server = FleetServer(store, None, port=0, token=TOKEN, rollouts=rollouts)
    rollouts.url = f"http://127.0.0.1:{server.port}"
    yield server, rollouts, published, signer
    server.close()


def _verifier(signer):
    return Verifier(public_key=signer.public_key) if signer.alg == "ed25519" else Verifier(secret="s3")


def test_a_rollout_publishes_signed_commands_that_verify_and_forgeries_do_not(fleet, tmp_path):
    server, rollouts, published, signer = fleet
    art = builds.copy(tmp_path / "a" / "detector.onnx")
    r = rollouts.start({"model": "detector", "artifact": str(art), "devices": ["cam1", "cam2"], "canary": 0.5})
    assert r["canary"] == ["cam1"] and [t for t, _ in published] == ["edge/cam1/command"]
    payload = published[0][1]
    doc = parse_command(payload, "cam1", _verifier(signer))
    assert doc["artifact"]["manifest"]["model"]["sha256"] == hashlib.sha256(art.read_bytes()).hexdigest()
    v = _verifier(signer)
    forged = json.loads(payload)
    forged["url"] = "http://evil.invalid"
    unsigned = {k: val for k, val in json.loads(payload).items() if k != "sig"}
    wrong_digest = json.loads(payload)
    wrong_digest["artifact"]["manifest"]["model"]["size"] += 1
    other = Signer(private_key=bytes(32)) if signer.alg == "ed25519" else Signer(secret="guess")
    by_other = other.sign({k: val for k, val in json.loads(payload).items() if k not in ("sig", "alg")})
    downgrade = Signer(secret="guess").sign({k: val for k, val in json.loads(payload).items() if k not in ("sig", "alg")})
    cases = [(forged, "bad_signature"), (unsigned, "unsigned"), (wrong_digest, "digest"), (by_other, "bad_signature")]
    if signer.alg == "ed25519":
        cases.append((downgrade, "bad_signature"))
    for bad, reason in cases:
        with pytest.raises(CommandError) as exc:
            parse_command(json.dumps(bad).encode(), "cam1", v)
        assert exc.value.reason == reason, (reason, str(exc.value))
    with pytest.raises(CommandError) as exc:
        parse_command(payload, "cam2", v)                       # another device's command
    assert exc.value.reason == "identity"
    with pytest.raises(CommandError) as exc:
        parse_command(payload, "cam1", Verifier())               # a device without a key takes no command
    assert exc.value.reason == "no_key"
    # the key the devices need is served
    import urllib.request
    key = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/rollouts/key?token={TOKEN}").read())
    assert key["alg"] == signer.alg and key["public_key"] == signer.public_key


def test_downloads_resume_verify_and_never_leave_a_bad_file(fleet, tmp_path):
    server, rollouts, _, _ = fleet
    art = builds.copy(tmp_path / "a" / "detector.onnx")
    digest, man = rollouts.artifacts.ingest(art)
    sha, size = man["model"]["sha256"], man["model"]["size"]
    url = f"http://127.0.0.1:{server.port}/artifacts/{sha}"
    dest = tmp_path / "dev" / "model.onnx"
    with pytest.raises(DownloadError) as exc:                         # no token: the fleet's rule
        fetch(url, "", dest, sha, size)
    assert exc.value.reason == "http" and not dest.exists()
    # a download cut off half-way (the device killed): the .part stays and the next try resumes it
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(art.read_bytes()[: size // 2])
    seen = []
    fetch(url, TOKEN, dest, sha, size, progress=lambda have, total: seen.append(have))
    assert dest.read_bytes() == art.read_bytes() and not part.exists()
    assert seen[0] > size // 2 and seen[0] - size // 2 <= 65536     # it continued from the half, not from 0
    # the wrong digest: refused, nothing written, no .part left to resume
    dest2 = tmp_path / "dev2" / "model.onnx"
    with pytest.raises(DownloadError) as exc:
        fetch(url, TOKEN, dest2, "0" * 64, size)
    assert exc.value.reason == "digest" and not dest2.exists() and not dest2.with_name("model.onnx.part").exists()
    with pytest.raises(DownloadError) as exc:                          # more bytes than announced
        fetch(url, TOKEN, dest2, sha, size - 10)
    assert exc.value.reason == "size" and not dest2.exists()


def test_a_truncated_answer_is_refused_and_resumed_later(tmp_path):
    data = bytes(range(256)) * 400
    sha = hashlib.sha256(data).hexdigest()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)

    def serve_once(cut: bool) -> None:
        conn, _ = sock.accept()
        request = conn.recv(4096).decode()
        start = int(request.split("bytes=")[1].split("-")[0]) if "Range: bytes=" in request else 0
        body = data[start:]
        head = (f"HTTP/1.1 {206 if start else 200} OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        conn.sendall(head.encode() + (body[: len(body) // 3] if cut else body))
        conn.close()

    url = f"http://127.0.0.1:{sock.getsockname()[1]}/artifacts/{sha}"
    dest = tmp_path / "model.onnx"
    t = threading.Thread(target=serve_once, args=(True,))
    t.start()
    with pytest.raises(DownloadError) as exc:
        fetch(url, "", dest, sha, len(data))
    t.join()
    assert exc.value.reason == "truncated" and not dest.exists()
    assert 0 < dest.with_name("model.onnx.part").stat().st_size < len(data)
    t = threading.Thread(target=serve_once, args=(False,))
    t.start()
    fetch(url, "", dest, sha, len(data))
    t.join()
    assert dest.read_bytes() == data
    sock.close()


def _status(store, device: str, state: str | None = None, rollout: str = "") -> None:
    from edge_app.fleet.store import Incoming
    cand = {"state": state, "rollout": rollout} if state else None
    doc = {"device": device, "models": {"detector": {"candidate": cand}}}
    store.write(Incoming(status={device: (json.dumps(doc), time.time())}))


def test_rollouts_live_in_the_store_go_canary_then_rest_and_survive_a_new_instance(tmp_path):
    store = FleetStore(tmp_path / "fleet.sqlite")
    for d in ("cam1", "cam2", "cam3", "cam4", "other"):
        _status(store, d)
    published: list[str] = []
    signer = Signer(secret="s3")

    def fleet():  # a fleet (re)started on the same store
        return Rollouts(store, ArtifactStore(tmp_path / "artifacts"), signer,
                        lambda t, p: published.append(t), "http://127.0.0.1:1")

    art = builds.copy(tmp_path / "a" / "detector.onnx")
    r = fleet().start({"model": "detector", "artifact": str(art), "group": "cam", "canary": 0.25})
    rid = r["id"]
    assert r["canary"] == ["cam1"] and r["devices"] == ["cam1", "cam2", "cam3", "cam4"]
    assert published == ["edge/cam1/command"] and r["by_state"] == {"issued": ["cam1"], "waiting": ["cam2", "cam3", "cam4"]}
    again = fleet()                                       # the fleet killed and started again: the store knows it
    again.republish()
    assert published[-1] == "edge/cam1/command"
    _status(store, "cam1", "shadow", rid)
    again.tick()
    assert again.all()[0]["phase"] == "canary" and len(published) == 2   # nothing for the rest yet
    _status(store, "cam1", "promoted", rid)
    again.tick()
    assert again.all()[0]["phase"] == "rest" and published[2:] == ["edge/cam2/command", "edge/cam3/command",
                                                                     "edge/cam4/command"]
    _status(store, "cam2", "kept", rid)
    _status(store, "cam3", "rejected", rid)
    again.tick()
    assert again.all()[0]["state"] == "running"          # cam4 has not answered
    _status(store, "cam4", "promoted", rid)
    fleet().tick()
    view = fleet().all()[0]
    assert view["state"] == "done" and [h[1] for h in view["history"]] == ["canary", "rest", "done"]
    assert view["by_state"] == {"promoted": ["cam1", "cam4"], "kept": ["cam2"], "rejected": ["cam3"]}
    # a canary that rejects halts the rollout: the rest never get it
    n = len(published)
    r2 = fleet().start({"model": "detector", "artifact": r["digest"], "devices": ["cam2", "cam3"], "canary": 0.5})
    _status(store, "cam2", "rejected", r2["id"])
    fleet().tick()
    assert published[n:] == ["edge/cam2/command"] and fleet().all()[0]["state"] == "halted"
    with pytest.raises(ValueError, match="not known"):
        fleet().start({"model": "detector", "artifact": r["digest"], "devices": ["nosuch"]})


def test_rollouts_of_an_earlier_json_file_move_into_the_store(tmp_path):
    store = FleetStore(tmp_path / "fleet.sqlite")
    old = {"r1-abc": {"id": "r1-abc", "model": "detector", "digest": "0" * 64, "manifest": {}, "devices": ["cam1"],
                      "canary": ["cam1"], "phase": "canary", "issued": ["cam1"], "state": "running", "created": 1.0}}
    legacy = tmp_path / "rollouts.json"
    legacy.write_text(json.dumps(old))
    Rollouts(store, ArtifactStore(tmp_path / "artifacts"), Signer(secret="s3"), lambda t, p: None,
             "http://127.0.0.1:1", legacy=legacy)
    assert [r["id"] for r in store.rollouts()] == ["r1-abc"] and not legacy.exists()
    assert legacy.with_suffix(".json.imported").is_file()
