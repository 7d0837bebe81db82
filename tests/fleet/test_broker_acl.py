"""A device may speak only for itself, enforced by the broker too (docs/security.md, run
here with a real Mosquitto): each device's user name is its device name, by password or by TLS client
certificate (``use_identity_as_username``), and the ACL ``pattern write edge/%u/#`` lets it publish under
its own topics only. A device that publishes as another is refused by the broker (MQTT 5: PUBACK "not
authorized"), so the fleet never even sees it; the fleet's own check (test_hostile.py) is the second wall."""
import json
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest

from edge_app.events.schema import make_event
from tests.events.broker import MOSQUITTO, make_certs, require_mosquitto
from tests.gst_helpers import free_port

pytestmark = pytest.mark.slow

# What docs/security.md tells an operator to put in the broker's ACL file.
ACL = """\
# the fleet reads every device; nobody else reads or writes through this user
user fleet
topic read edge/#
# every device (user name = device name, from its password entry or its certificate's CN) writes
# only under its own prefix, and reads nothing
pattern write edge/%u/#
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _client_cert(folder: Path, name: str) -> tuple[Path, Path]:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-out", f"{name}.crt", cwd=folder)
    return folder / f"{name}.crt", folder / f"{name}.key"


@pytest.fixture()
def acl_broker(tmp_path):
    require_mosquitto()
    folder = tmp_path / "broker"
    folder.mkdir()
    certs = make_certs(folder / "certs")
    passwd = folder / "passwd"
    for i, (user, password) in enumerate((("fleet", "fleet-pass"), ("camA", "a-pass"), ("camB", "b-pass"))):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd), user, password],
                       check=True, capture_output=True)
    (folder / "acl").write_text(ACL)
    port, tls_port = free_port(), free_port()
    c = folder / "certs"
    conf = [f"user {pwd.getpwuid(os.getuid()).pw_name}", "persistence false", "per_listener_settings true",
            f"listener {port} 127.0.0.1", "allow_anonymous false", f"password_file {passwd}", f"acl_file {folder / 'acl'}",
            f"listener {tls_port} 127.0.0.1", f"cafile {c / 'ca.crt'}", f"certfile {c / 'server.crt'}",
            f"keyfile {c / 'server.key'}", "require_certificate true", "use_identity_as_username true",
            f"acl_file {folder / 'acl'}"]
    (folder / "mosquitto.conf").write_text("\n".join(conf) + "\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(folder / "mosquitto.conf")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read()
    yield {"port": port, "tls_port": tls_port, "ca": certs["ca"], "certs": c}
    proc.terminate()
    proc.wait(10)


def _client(name, port, user=None, password=None, ca=None, cert=None):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    if cert:
        client.tls_set(ca_certs=str(ca), certfile=str(cert[0]), keyfile=str(cert[1]))
    acks: dict[int, int] = {}
    client.on_publish = lambda c, u, mid, reason, props: acks.__setitem__(mid, reason.value)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client, acks


def _publish(client, acks, topic, payload) -> int:
    info = client.publish(topic, payload, qos=1)
    end = time.monotonic() + 5
    while info.mid not in acks and time.monotonic() < end:
        time.sleep(0.02)
    return acks.get(info.mid, -1)


def _event(device: str, seq: int) -> str:
    return json.dumps(make_event("counts", seq, device, "main", lines={}, zones={}))


def test_a_device_cannot_publish_as_another_by_password_or_by_certificate(acl_broker, tmp_path):
    got: list[tuple[str, bytes]] = []
    fleet, _ = _client("fleet-acl", acl_broker["port"], "fleet", "fleet-pass")
    fleet.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    fleet.subscribe("edge/#", qos=1)
    time.sleep(0.3)
    cam_a, acks_a = _client("camA", acl_broker["port"], "camA", "a-pass")
    tls_a, acks_t = _client("camA-tls", acl_broker["tls_port"], ca=acl_broker["ca"],
                            cert=_client_cert(acl_broker["certs"], "camA"))
    try:
        time.sleep(0.3)
        assert _publish(cam_a, acks_a, "edge/camA/events", _event("camA", 1)) == 0          # its own: accepted
        assert _publish(cam_a, acks_a, "edge/camB/events", _event("camB", 1)) == 135        # not authorized
        assert _publish(tls_a, acks_t, "edge/camA/events", _event("camA", 2)) == 0
        assert _publish(tls_a, acks_t, "edge/camB/status", b'{"device": "camB"}') == 135
        time.sleep(0.5)
    finally:
        for c in (fleet, cam_a, tls_a):
            c.loop_stop()
            c.disconnect()
    topics = [t for t, _ in got]
    assert topics == ["edge/camA/events", "edge/camA/events"], topics     # nothing reached the fleet as camB
