"""The fleet under hostile or broken peers, with a real Mosquitto: no message stops it, a refused message
costs only itself (never its batch), a poison message queued while the fleet was away is refused again at
the next start, a device cannot speak for another, and a row the database itself refuses is isolated.

Each row of the table failed on the code before issue 21: ``Infinity`` and 10,000-deep JSON killed the
writer thread, ``2**70`` dropped its whole batch, the forged event was stored as camB's, the 10 MB
messages were stored whole, HTML counts were stored and shown."""
import json
import sqlite3
import time

import pytest

from edge_app.events.schema import make_event
from tests.events.broker import PASSWORD, USER, Broker, require_mosquitto

pytestmark = pytest.mark.slow


def _wait(pred, seconds: float, step: float = 0.05) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


@pytest.fixture()
def broker(tmp_path):
    require_mosquitto()
    b = Broker(tmp_path / "broker")
    yield b
    b.stop()


def _publisher(broker, name="hostile-pub"):
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    pub.username_pw_set(USER, PASSWORD)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    return pub


def _collector(tmp_path, broker, batch_s=0.0, client_id="fleet-test"):
    from edge_app.fleet.collector import Broker as Settings
    from edge_app.fleet.collector import FleetCollector
    from edge_app.fleet.store import FleetStore

    store = FleetStore(tmp_path / "fleet.sqlite")
    fleet = FleetCollector(Settings(broker.url, client_id=client_id), store, group="", batch_s=batch_s)
    fleet.start()
    assert _wait(lambda: fleet.state == "connected", 10)
    time.sleep(0.3)  # subscribed
    return store, fleet


def _event(device: str, seq: int) -> str:
    return json.dumps(make_event("line_crossed", seq, device, "main", line="door", direction="in", model="det",
                                 track_id=seq, **{"class": "person"}))


def _status(**counts) -> str:
    return json.dumps({"device": "x", "fps": 10.0, "health": "ok", "counts": {"lines": {"door": counts}, "zones": {}}})


def _deep(n: int) -> bytes:
    return b'{"a": ' * n + b"1" + b"}" * n


GOOD = _event("x", 1)
POISON = [  # topic, payload, reason
    ("edge/x/events", GOOD.replace('"seq": 1', '"seq": Infinity').encode(), "not_finite"),
    ("edge/x/events", GOOD.replace('"seq": 1', '"seq": NaN').encode(), "not_finite"),
    ("edge/x/events", _deep(10_000), "too_large"),     # 70 KB of brackets: refused before parsing
    ("edge/x/events", _deep(4_000), "depth"),          # beyond Python's recursion limit
    ("edge/x/events", _deep(20), "depth"),             # beyond the schema's depth
    ("edge/x/events", GOOD.replace('"seq": 1', f'"seq": {2**70}').replace('"x-1"', f'"x-{2**70}"').encode(),
     "out_of_range"),
    ("edge/x/events", GOOD.replace('"door"', json.dumps("d" * 10 * 2**20)).encode(), "too_large"),
    ("edge/x/events", GOOD.replace('"x-1"', '"x-2"').encode(), "identity"),              # id is not device-seq
    ("edge/camEvil/events", _event("camB", 1).encode(), "identity"),                      # speaks for camB
    ("edge/x/events", GOOD.replace('"line_crossed"', '"launch_missiles"').encode(), "unknown_type"),
    ("edge/x/events", GOOD.replace('"direction": "in", ', '').encode(), "missing"),
    ("edge/x/events", b'{"seq": 1, "type": "counts"}', "missing"),
    ("edge/x/events", b"[1, 2]", "not_object"),
    ("edge/x/events", b"{not json", "not_json"),
    ("edge/x/events", b"\xff\xfe{}", "not_utf8"),
    ("edge/x/status", _status(total_in="<img src=x onerror=alert(1)>", total_out=0).encode(), "bad_field"),
    ("edge/x/status", json.dumps({"fps": 1, "junk": "j" * 10 * 2**20}).encode(), "too_large"),
    ("edge/x/status", json.dumps({"device": "camB", "fps": 1}).encode(), "identity"),
    ("edge/x/snapshot/x-1/crop", b"\xff\xd8" + b"\0" * (10 * 2**20), "too_large"),
    ("edge/x/snapshot/x-1/crop", b"GIF89a", "not_jpeg"),
    ("edge/x/snapshot/y-1/crop", b"\xff\xd8\xff", "identity"),
    ("edge/x/availability", b"maybe", "bad_field"),
    ("edge/x/snapshot/x-1/thumb", b"\xff\xd8\xff", "topic"),
    ("edge/../events", b"{}", "topic"),
]


@pytest.mark.parametrize("topic, payload, reason", POISON, ids=[f"{i}-{r[2]}" for i, r in enumerate(POISON)])
def test_a_hostile_message_costs_only_itself(tmp_path, broker, topic, payload, reason, caplog):
    # batch_s: the poison and four good events arrive in one batch of the writer
    store, fleet = _collector(tmp_path, broker, batch_s=0.5)
    pub = _publisher(broker)
    try:
        infos = [pub.publish("edge/x/events", _event("x", 10), qos=1),
                 pub.publish("edge/x/events", _event("x", 11), qos=1),
                 pub.publish(topic, payload, qos=1),
                 pub.publish("edge/x/events", _event("x", 12), qos=1),
                 pub.publish("edge/x/events", _event("x", 13), qos=1)]
        for info in infos:
            info.wait_for_publish(10)
        assert _wait(lambda: {"x-10", "x-11", "x-12", "x-13"} <= store.event_ids(), 10), store.event_ids()
        assert _wait(lambda: sum(fleet.rejected.values()) == 1, 5), fleet.rejected
        assert fleet.rejected == {reason: 1}
        assert fleet.alive
        # the writer goes on: the next message is stored too
        pub.publish("edge/x/events", _event("x", 14), qos=1).wait_for_publish(5)
        assert _wait(lambda: "x-14" in store.event_ids(), 10)
    finally:
        pub.loop_stop()
        pub.disconnect()
        fleet.close()
    assert store.event_ids() == {"x-10", "x-11", "x-12", "x-13", "x-14"}      # nothing forged stored
    assert not any(d["device"] == "camB" for d in store.devices())
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused and topic[:60] in refused[0] and reason in refused[0], refused


def test_a_poison_message_queued_while_the_fleet_was_away_is_refused_at_the_next_start(tmp_path, broker):
    store, fleet = _collector(tmp_path, broker)          # a persistent session exists on the broker
    fleet.close()
    store.close()
    pub = _publisher(broker)
    try:  # queued for the absent fleet's session: the broker delivers them when it comes back
        for payload in (_event("x", 1), GOOD.replace('"seq": 1', '"seq": Infinity'), _deep(4_000).decode(),
                        _event("x", 2)):
            pub.publish("edge/x/events", payload, qos=1).wait_for_publish(5)
    finally:
        pub.loop_stop()
        pub.disconnect()
    for attempt in range(2):  # and a second start finds nothing left to choke on (everything was acked)
        store, fleet = _collector(tmp_path, broker)
        try:
            if attempt == 0:
                assert _wait(lambda: {"x-1", "x-2"} <= store.event_ids(), 10), store.event_ids()
                assert _wait(lambda: fleet.rejected == {"not_finite": 1, "depth": 1}, 5), fleet.rejected
            else:
                time.sleep(1.0)
                assert fleet.rejected == {}
            assert fleet.alive
        finally:
            fleet.close()
            store.close()


def test_a_row_the_database_refuses_is_isolated_from_its_batch(tmp_path, broker):
    store, fleet = _collector(tmp_path, broker, batch_s=0.5)
    # A real refusal by SQLite itself, for one id only (what the schema let through but the database won't take)
    with sqlite3.connect(tmp_path / "fleet.sqlite") as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.id = 'x-22' "
                   "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")
    pub = _publisher(broker)
    try:
        for seq in (21, 22, 23, 24):
            pub.publish("edge/x/events", _event("x", seq), qos=1).wait_for_publish(5)
        assert _wait(lambda: {"x-21", "x-23", "x-24"} <= store.event_ids(), 10), store.event_ids()
        assert _wait(lambda: fleet.rejected == {"store": 1}, 5), fleet.rejected
        assert fleet.alive and "x-22" not in store.event_ids()
    finally:
        pub.loop_stop()
        pub.disconnect()
        fleet.close()
