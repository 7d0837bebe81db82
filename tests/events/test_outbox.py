"""The outbox on its own: order, acknowledgement, a sequence that survives a restart, the disk cap
(oldest dropped and counted), and bad MQTT settings as config errors naming the key."""
import json
import textwrap
import threading

import pytest

from edge_app.config import ConfigError, load_config
from edge_app.events.bus import EventBus
from edge_app.events.outbox import Outbox
from edge_app.events.schema import TYPES, make_event


def test_order_ack_and_a_sequence_that_survives_a_restart(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    seqs = [box.add(lambda seq: (seq, [("t/events", f"{seq}".encode(), None)])) for _ in range(3)]
    rows = box.pending()
    assert [r[2] for r in rows] == [b"1", b"2", b"3"] and seqs == [1, 2, 3]
    box.ack(rows[0][0])
    box.close()
    again = Outbox(tmp_path / "o.sqlite")          # a restart (or kill -9: the rows were committed)
    assert [r[2] for r in again.pending()] == [b"2", b"3"]
    assert again.last_seq == 3 and again.add(lambda seq: (seq, [])) == 4   # never a repeated id
    assert again.pending(after=again.pending()[0][0])[0][2] == b"3"


def test_two_threads_emitting_keep_the_outbox_in_sequence_order(tmp_path):
    # The pipeline thread (track events) and the main loop (counts) emit at once; a subscriber that
    # checks the order must see seq 1, 2, 3, ... (this interleaved before emit took one lock).
    box = Outbox(tmp_path / "o.sqlite")
    bus = EventBus("cam1", "main", box, topic_prefix="edge/cam1")
    start = threading.Barrier(4)

    def work():
        start.wait()
        for _ in range(150):
            bus.emit("counts", lines={}, zones={})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bus.flush(30)            # the events thread stores what was queued
    seqs = [json.loads(r[2])["seq"] for r in box.pending(limit=1000)]
    assert seqs == list(range(1, 601))


def test_the_disk_cap_drops_the_oldest_and_counts_them(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", max_bytes=2000)
    for i in range(100):
        box.put("t/events", b"x" * 100 + str(i).encode())
    rows = box.pending(limit=1000)
    assert box.dropped > 0 and len(rows) + box.dropped == 100
    assert rows[-1][2].endswith(b"99")  # the newest kept


def test_events_follow_the_schema():
    e = make_event("line_crossed", 7, "cam1", "main", line="door", direction="in")
    assert (e["v"], e["id"], e["seq"], e["type"]) == (1, "cam1-7", 7, "line_crossed") and e["time"].endswith("Z")
    assert "track_end" in TYPES
    with pytest.raises(ValueError, match="unknown event type"):
        make_event("explosion", 1, "d", "s")


@pytest.mark.parametrize("mqtt, message", [
    ('url = "http://broker"', "output.mqtt.url = 'http://broker': expected mqtt://host"),
    ('url = "mqtt://broker"\nca_file = "ca.crt"', "output.mqtt.ca_file = 'ca.crt': only used with mqtts://"),
    ('url = "mqtts://broker"\nca_file = "nope.crt"', "output.mqtt.ca_file = 'nope.crt'"),
    ('device_id = "cam/1"', "output.mqtt.device_id = 'cam/1'"),
    ('topic_prefix = "edge/#"', "output.mqtt.topic_prefix = 'edge/#'"),
])
def test_bad_mqtt_settings_are_named(tmp_path, mqtt, message):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(f"[output.mqtt]\nenabled = true\n{mqtt}\n"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert any(message in p for p in info.value.problems), info.value.problems


def test_events_queued_off_the_emitting_thread_are_all_stored_at_close(tmp_path):
    # issue 25: JPEG encoding and the outbox insert left the inference thread for the events thread; a
    # stop (SIGTERM -> close) right after a burst must still store every queued event, in order
    import numpy as np

    from edge_app.events.snapshots import SnapshotStore

    box = Outbox(tmp_path / "o.sqlite")
    bus = EventBus("cam1", "main", box, topic_prefix="edge/cam1", snapshots=SnapshotStore(tmp_path / "snaps"))
    frame = np.full((480, 640, 3), 90, np.uint8)
    for i in range(120):
        bus.emit("track_end", snapshot=(frame, np.array([10, 10, 200, 300], np.float32)), model="det",
                 track_id=i, score=0.9, box=[10, 10, 200, 300], duration_s=1.0, **{"class": "person"})
    assert bus.waiting > 0          # the emitter did not wait for them
    bus.close()
    rows = box.pending(limit=1000)
    events = [json.loads(r[2]) for r in rows if r[1].endswith("/events")]
    assert [e["seq"] for e in events] == list(range(1, 121))
    # memory is bounded: beyond KEEP_PICTURES queued, the older queued events lose their pictures, never
    # themselves; the newest always keep theirs
    assert all(e.get("snapshot") for e in events[-EventBus.KEEP_PICTURES:])
