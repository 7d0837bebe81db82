"""A real PostgreSQL server for tests and benchmarks: Debian's ``postgresql`` binaries, a cluster made
here (initdb) on a free loopback port, started with pg_ctl and removed afterwards, as tests/events/broker.py
does for Mosquitto. As root the server runs as the ``postgres`` user (initdb refuses root). Skips when the
binaries are absent."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.gst_helpers import free_port

USER, PASSWORD, DB = "fleet", "fleet-pw", "fleet"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def require_postgres() -> None:
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        pytest.skip("needs Debian's postgresql (make test installs it)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("needs psycopg (the fleet extra: pip install -e '.[fleet]')")


class Postgres:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="edge-pg-"))
        self.port = free_port()
        self.data = self.folder / "data"
        root = os.getuid() == 0
        self._as = ["runuser", "-u", "postgres", "--"] if root else []
        if root:
            shutil.chown(self.folder, "postgres", "postgres")
        pw = self.folder / "pw"
        pw.write_text(PASSWORD + "\n")
        if root:
            shutil.chown(pw, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(pw), "-A", "scram-sha-256",
                  "--no-sync", "-E", "UTF8")
        self.start()
        subprocess.run([*self._as, _bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                        DB], check=True, capture_output=True, env={**os.environ, "PGPASSWORD": PASSWORD})

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.folder / "log"), "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=50", "start")

    def stop(self) -> None:
        subprocess.run([*self._as, _bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, cwd=self.folder)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DB}"
