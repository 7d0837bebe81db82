"""``edge-app fleet --broker mqtt://user:pass@broker:1883``: one view over many devices.

Subscribes to every device under ``--prefix`` (events, status and snapshots through the MQTT 5 shared
subscription ``$share/<group>/...``: start several instances with the same ``--group`` to split the load),
keeps each device's presence, last status and recent events with snapshots in SQLite under ``--state``,
and serves the fleet page, ``/api/fleet``, ``/metrics`` and ``/healthz`` on ``--http``. The token rule is
the live page's: a bind beyond loopback needs ``--token`` (or ``EDGE_APP_HTTP_TOKEN``).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from pathlib import Path

from ..config import is_loopback
from ..logs import LOG_FORMATS, log_event, setup_logging
from .overrides import TOKEN_ENV
from .errors import fail

log = logging.getLogger("edge_app.fleet")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="edge-app fleet", description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", required=True, help="mqtt://[user:pass@]host[:1883] or mqtts://host[:8883]")
    p.add_argument("--prefix", default="edge", help="the devices' topic_prefix (default: %(default)s)")
    p.add_argument("--group", default="edge-fleet", help="shared-subscription group; instances with the same group "
                   "split the messages; '' = plain subscriptions (default: %(default)s)")
    p.add_argument("--client-id", default="", help="MQTT client id (default: edge-fleet-<host>-<group>); unique "
                   "per instance, stable across restarts (the broker keeps its session)")
    p.add_argument("--ca", default="", help="CA certificates for mqtts:// (default: the system's)")
    p.add_argument("--cert", default="", help="client certificate for mqtts://")
    p.add_argument("--key", default="", help="client key for --cert")
    p.add_argument("--keepalive", type=int, default=30, help="MQTT keep-alive, s (default: %(default)s)")
    p.add_argument("--session-expiry", type=int, default=3600, help="how long the broker queues events while "
                   "the fleet is away, s (default: %(default)s)")
    p.add_argument("--state", default="var/fleet", help="folder of fleet.sqlite and the artifact store "
                   "(default: %(default)s)")
    p.add_argument("--store", default="", help="postgresql://user:pass@host/db: one database shared by every "
                   "instance of the group (psycopg, the fleet extra); default: SQLite under --state")
    p.add_argument("--keep-events", type=int, default=200, help="recent events kept per device (default: %(default)s)")
    p.add_argument("--snapshot-mb", type=float, default=500, help="disk cap of snapshots, MB (default: %(default)s)")
    p.add_argument("--http", default="127.0.0.1:8090", help="HOST:PORT of the page (default: %(default)s)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV, ""), help=f"bearer token of the page and API "
                   f"(default: ${TOKEN_ENV}); required beyond loopback")
    p.add_argument("--signing-key", default="", help="Ed25519 private key (raw 32 bytes) that signs rollout "
                   "commands; made there when missing; devices hold its public key (/api/rollouts/key)")
    p.add_argument("--command-secret", default=os.environ.get("EDGE_APP_COMMAND_SECRET", ""),
                   help="or a shared HMAC-SHA256 secret (without the cryptography package)")
    p.add_argument("--url", default="", help="the fleet's address as devices reach it, for downloads "
                   "(default: http://HOST:PORT of --http)")
    p.add_argument("--download-kib-s", type=float, default=0, help="KiB per second each artifact download may "
                   "take (0 = unlimited; a fleet on thin links keeps the devices' own traffic going)")
    p.add_argument("--log-format", choices=LOG_FORMATS, default="auto", help="console log format")
    p.add_argument("--max-seconds", type=float, help="stop after this many seconds (tests, benchmarks)")
    return p.parse_args(argv)


def _http(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--http {value!r}: expected HOST:PORT")
    return ("0.0.0.0" if host == "@" else host), int(port)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        host, port = _http(a.http)
        if not is_loopback(host) and not a.token:
            raise ValueError(f"--http {a.http}: a bind beyond loopback requires --token (or ${TOKEN_ENV})")
        from ..core.uri import parse_url

        parse_url(a.broker)
        if a.keep_events < 1:
            raise ValueError(f"--keep-events {a.keep_events}: expected at least 1")
        if a.download_kib_s < 0:
            raise ValueError(f"--download-kib-s {a.download_kib_s}: expected 0 (unlimited) or more")
    except ValueError as exc:
        return fail("fleet", f"{exc}")
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        return fail("fleet", "needs paho-mqtt >= 2 (pip install -e .)")
    from ..fleet.collector import Broker, FleetCollector
    from ..fleet.server import FleetServer
    from ..fleet.pgstore import open_store
    from ..health.notify import Notifier

    setup_logging(console=a.log_format)
    state = Path(a.state)
    try:
        store = open_store(a.store, state, a.keep_events, int(a.snapshot_mb * 2**20))
    except Exception as exc:  # psycopg missing, the database unreachable or refusing the password
        return fail("fleet", f"--store {a.store.split('@')[-1]}: {exc}")
    collector = FleetCollector(Broker(a.broker, a.ca, a.cert, a.key, a.client_id, a.keepalive, a.session_expiry),
                               store, prefix=a.prefix, group=a.group)
    rollouts = None
    if a.signing_key or a.command_secret:
        from ..fleet.rollouts import ArtifactStore, Rollouts
        from ..rollout.commands import Signer

        if a.signing_key:
            key = Path(a.signing_key)
            if not key.is_file():
                key.parent.mkdir(parents=True, exist_ok=True)
                key.write_bytes(os.urandom(32))
                key.chmod(0o600)
            signer = Signer(private_key=key.read_bytes())
        else:
            signer = Signer(secret=a.command_secret)
        rollouts = Rollouts(store, ArtifactStore(state / "artifacts"), signer,
                            lambda topic, payload: collector.client.publish(topic, payload, qos=1, retain=True),
                            a.url or f"http://{host}:{port}", a.prefix, legacy=state / "rollouts.json")
        log_event(log, logging.INFO, "fleet_rollouts", alg=signer.alg, public_key=signer.public_key)
    try:
        server = FleetServer(store, collector, host=host, port=port, token=a.token, rollouts=rollouts,
                             download_bps=a.download_kib_s * 1024)
    except OSError as exc:
        return fail("fleet", f"cannot listen on {a.http}: {exc}")
    collector.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    notify = Notifier()
    notify.ready(f"fleet on {server.url}")
    log_event(log, logging.INFO, "fleet_ready", url=server.url, broker=collector.describe()["broker"], group=a.group)
    end = time.monotonic() + a.max_seconds if a.max_seconds else None
    published = False
    try:
        while not stop.wait(1.0):
            if rollouts is not None and collector.state == "connected":
                if not published:  # a restarted fleet resumes: running rollouts' commands again
                    rollouts.republish()
                    published = True
                try:
                    rollouts.tick()
                except Exception as exc:
                    log.warning("fleet: rollouts: %s", exc)
            if collector.alive:
                notify.watchdog()  # only while the writer works: a stuck fleet is restarted by systemd
            if end is not None and time.monotonic() >= end:
                break
    finally:
        notify.stopping()
        server.close()
        collector.close()
        store.close()
        log_event(log, logging.INFO, "fleet_stopped", **{k: v for k, v in collector.describe().items() if k != "lag_ms"})
    return 0
