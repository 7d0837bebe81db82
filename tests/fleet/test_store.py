"""The fleet's store on its own: redeliveries stored once, the per-device cap (totals still count every
event), snapshots leaving with their events and under the byte cap (counted with SQLite itself)."""
import json
import sqlite3

from edge_app.fleet.store import FleetStore, Incoming


def _event(device: str, seq: int) -> tuple[str, dict, str, float]:
    doc = {"id": f"{device}-{seq}", "seq": seq, "type": "line_crossed", "time": "2026-12-01T00:00:00.000Z"}
    return device, doc, json.dumps(doc), 1000.0 + seq


def test_redeliveries_once_and_the_per_device_cap(tmp_path):
    store = FleetStore(tmp_path / "f.sqlite", keep_events=100, prune_every_s=0)
    jpeg = b"\xff\xd8" + b"x" * 100
    for start in range(1, 301, 50):
        batch = Incoming(events=[_event("cam-1", s) for s in range(start, start + 50)])
        batch.events.append(_event("cam-1", start))                         # a redelivery in the same batch
        batch.snapshots = [(f"cam-1-{s}", "crop", jpeg, 1.0) for s in range(start, start + 50)]
        new = store.write(batch)
        assert [d["seq"] for d in new] == list(range(start, start + 50))
    assert store.write(Incoming(events=[_event("cam-1", 300)])) == []        # and one in a later batch
    assert store.duplicates == 7
    d = store.devices()[0]
    assert (d["device"], d["events"], d["last_seq"]) == ("cam-1", 300, 300)
    with sqlite3.connect(tmp_path / "f.sqlite") as db:
        seqs = [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")]
        snaps = {r[0] for r in db.execute("SELECT event_id FROM snapshots")}
    assert seqs == list(range(201, 301))
    assert snaps == {f"cam-1-{s}" for s in range(201, 301)}                # the pruned events' pictures went too
    assert store.snapshot("cam-1-300", "crop") == jpeg and store.snapshot("cam-1-1", "crop") is None


def test_the_snapshot_byte_cap_drops_the_oldest(tmp_path):
    store = FleetStore(tmp_path / "f.sqlite", snapshot_bytes=10_000, prune_every_s=0)
    for i in range(40):
        store.write(Incoming(events=[_event("cam-2", i + 1)],
                             snapshots=[(f"cam-2-{i + 1}", "frame", b"\xff\xd8" + bytes(998), float(i))]))
    with sqlite3.connect(tmp_path / "f.sqlite") as db:
        total, first = db.execute("SELECT SUM(LENGTH(jpeg)), MIN(received) FROM snapshots").fetchone()
    assert total <= 10_000 and first > 0                                     # the oldest went, the newest stayed
    assert store.snapshot("cam-2-40", "frame") is not None
    assert len(store.recent_events(100)) == 40                               # events are not what the cap drops
