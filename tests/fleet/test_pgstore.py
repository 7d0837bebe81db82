"""The fleet's PostgreSQL store against a real server (tests/fleet/postgres.py): the SQLite store's rules
(redeliveries once, the per-device cap, snapshots with their events and under the byte cap), and two
instances writing overlapping batches at once (as two fleet instances whose shared subscription redelivers
to the other after a crash): every event once, totals exact, one view read from either."""
import json
import threading

import pytest

from edge_app.fleet.store import Incoming
from tests.fleet.postgres import Postgres, require_postgres


def _event(device: str, seq: int) -> tuple[str, dict, str, float]:
    doc = {"id": f"{device}-{seq}", "seq": seq, "type": "line_crossed", "time": "2026-12-01T00:00:00.000Z"}
    return device, doc, json.dumps(doc), 1000.0 + seq


@pytest.fixture(scope="module")
def pg():
    require_postgres()
    server = Postgres()
    yield server
    server.close()


def _fresh(pg, **kw):
    from edge_app.fleet.pgstore import PgFleetStore
    import psycopg
    with psycopg.connect(pg.url, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS events, snapshots, devices")
    return PgFleetStore(pg.url, **kw)


def test_redeliveries_once_the_cap_and_snapshots(pg):
    store = _fresh(pg, keep_events=100, prune_every_s=0)
    jpeg = b"\xff\xd8" + b"x" * 100
    for start in range(1, 301, 50):
        batch = Incoming(events=[_event("cam-1", s) for s in range(start, start + 50)])
        batch.events.append(_event("cam-1", start))
        batch.snapshots = [(f"cam-1-{s}", "crop", jpeg, 1.0) for s in range(start, start + 50)]
        new = store.write(batch)
        assert [d["seq"] for d in new] == list(range(start, start + 50))
    assert store.write(Incoming(events=[_event("cam-1", 300)])) == []
    assert store.duplicates == 7
    d = store.devices()[0]
    assert (d["device"], d["events"], d["last_seq"]) == ("cam-1", 300, 300)
    assert sorted(int(i.split("-")[-1]) for i in store.event_ids()) == list(range(201, 301))
    assert store.snapshot("cam-1-300", "crop") == jpeg and store.snapshot("cam-1-1", "crop") is None
    assert store.recent_events(5)[0]["snapshots"] == {"crop": "snapshot/cam-1-300/crop"}
    store.close()


def test_the_snapshot_byte_cap_drops_the_oldest(pg):
    store = _fresh(pg, snapshot_bytes=10_000, prune_every_s=0)
    for i in range(40):
        store.write(Incoming(events=[_event("cam-2", i + 1)],
                             snapshots=[(f"cam-2-{i + 1}", "frame", b"\xff\xd8" + bytes(998), float(i))]))
    import psycopg
    with psycopg.connect(pg.url) as c:
        total, first = c.execute("SELECT SUM(LENGTH(jpeg)), MIN(received) FROM snapshots").fetchone()
    assert total <= 10_000 and first > 0
    assert store.snapshot("cam-2-40", "frame") is not None
    assert len(store.recent_events(100)) == 40
    store.close()


def test_two_instances_writing_overlapping_batches_store_each_event_once(pg):
    from edge_app.fleet.pgstore import PgFleetStore
    a = _fresh(pg, keep_events=10_000)
    b = PgFleetStore(pg.url, keep_events=10_000)
    devices = [f"cam-{i}" for i in range(10)]
    errors: list[BaseException] = []

    def writer(store, offset):
        try:
            for start in range(1, 401, 20):
                events = [_event(d, s) for d in devices for s in range(start, start + 20)]
                # each instance gets every event once, in another order: every row is contended
                store.write(Incoming(events=events[offset::2] + events[1 - offset::2],
                                     status={d: (json.dumps({"fps": offset}), 2000.0 + start) for d in devices}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s, k)) for k, s in enumerate((a, b))]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert not errors, errors
    for view in (a.devices(), b.devices()):
        assert [(d["device"], d["events"], d["last_seq"]) for d in view] == [(d, 400, 400) for d in sorted(devices)]
    assert a.duplicates + b.duplicates == 4000                   # each event was offered twice, stored once
    assert len(a.event_ids()) == 4000
    a.close()
    b.close()


def test_rollouts_are_shared_and_one_instance_at_a_time_moves_one_on(pg):
    """Two instances see one rollout; while one holds it (its step runs), the other skips it (SKIP LOCKED)
    instead of moving it on twice; afterwards the other sees the change."""
    from edge_app.fleet.pgstore import PgFleetStore
    import psycopg
    with psycopg.connect(pg.url, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS rollouts")
    a = _fresh(pg)
    b = PgFleetStore(pg.url)
    doc = {"id": "r1-abc", "state": "running", "phase": "canary", "created": 1.0, "issued": []}
    a.add_rollout(doc)
    assert [r["id"] for r in b.rollouts()] == ["r1-abc"]
    holding, release = threading.Event(), threading.Event()

    def slow_step(d):
        holding.set()
        release.wait(30)
        return {**d, "phase": "rest"}

    t = threading.Thread(target=a.update_rollout, args=("r1-abc", slow_step))
    t.start()
    assert holding.wait(30)
    called = []
    assert b.update_rollout("r1-abc", lambda d: called.append(d) or {**d, "phase": "twice"}) is None
    assert called == []                                   # skipped, not waited on nor applied
    release.set()
    t.join(30)
    assert b.rollouts()[0]["phase"] == "rest"
    assert b.update_rollout("r1-abc", lambda d: {**d, "state": "done"})["state"] == "done"
    assert a.rollouts()[0]["state"] == "done"
    a.close()
    b.close()
