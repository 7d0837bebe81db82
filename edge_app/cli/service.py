"""``edge-app service install|uninstall``: the systemd unit with this venv's paths, the config in
/etc/edge-app (never overwriting an existing one), the service user, daemon-reload and enable.

``--dry-run`` prints every step instead of doing it; ``--root DIR`` installs into another root (tests, image
builds), where systemctl and useradd are not run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..core.artifact import write_atomic
from .errors import fail

PACKAGE = Path(__file__).resolve().parents[1]  # edge_app/ (this module is edge_app/cli/service.py)
REPO = PACKAGE.parent
UNIT_TEMPLATE = REPO / "systemd" / "edge-app.service"
UNIT_NAME = "edge-app.service"
STATE, CACHE, LOGS = Path("/var/lib/edge-app"), Path("/var/cache/edge-app"), Path("/var/log/edge-app")
# Where the device writes (ProtectSystem=strict: /etc is read-only): everything under runtime.state_dir
# (samples, inbox, events, recordings: relative paths there), engines in the cache, the log in the logs.
STATE_KEYS = {("runtime", "state_dir"): STATE, ("runtime", "engine_dir"): CACHE / "engines",
              ("logging", "file"): LOGS / "edge-app.jsonl"}
# Read-only inputs, made absolute (relative to the shipped config's folder): the config moves to /etc.
MODEL_PATH_KEYS = ("artifact", "thresholds_file")
PATH_KEYS = {("labels", "labels_file")}


def render_unit(venv: Path, config: Path, user: str) -> str:
    text = UNIT_TEMPLATE.read_text()
    for key, value in (("@VENV@", str(venv)), ("@CONFIG@", str(config)), ("@USER@", user),
                       ("@DOCS@", str(REPO / "README.md"))):
        text = text.replace(key, value)
    return text


def device_config(source: Path) -> str:
    """The shipped config adapted for /etc/edge-app: model and label paths absolute, writable paths in
    the service's state/cache/log folders, a file:// or replay:// source with a relative path made
    absolute. Comments and layout are kept (tomlkit); the result passes the schema."""
    from ..config import source_path
    from ..config.edit import edit_text

    base = source.resolve().parent

    def absolute(value: Any) -> Any:
        return str(base / value) if isinstance(value, str) and value and not Path(value).is_absolute() else value

    def get(doc: Any, path: tuple[str, ...]) -> Any:
        node = doc
        for key in path[:-1]:
            node = node.get(key) if hasattr(node, "get") else None
            if node is None:
                return None
        return node if hasattr(node, "get") and path[-1] in node else None

    def transform(doc: Any) -> None:
        for path, target in STATE_KEYS.items():
            table = get(doc, path)
            if table is None:  # not written: added, the defaults would land next to /etc/edge-app
                table = doc
                for key in path[:-1]:
                    table = table.setdefault(key, {})
                table[path[-1]] = str(target)
            elif table[path[-1]] and not Path(str(table[path[-1]])).is_absolute():
                table[path[-1]] = str(target)
        for path in PATH_KEYS:
            table = get(doc, path)
            if table is not None:
                table[path[-1]] = absolute(str(table[path[-1]]))
        for model in (doc.get("models") or {}).values():
            for key in MODEL_PATH_KEYS:
                if key in model:
                    model[key] = absolute(str(model[key]))
        src = doc.get("source")
        if src is not None and "uri" in src:
            uri = str(src["uri"])
            local = source_path(uri)
            if local is not None and not local.is_absolute():
                scheme = uri.split("://", 1)[0]
                src["uri"] = f"{scheme}://{base / local}"

    return edit_text(source.read_text(), {}, transform, where=str(source))


class Steps:
    def __init__(self, dry_run: bool, root: Path | None) -> None:
        self.dry_run, self.root = dry_run, root

    def path(self, p: Path) -> Path:
        return p if self.root is None else self.root / p.relative_to("/")

    def write(self, p: Path, text: str, mode: int = 0o644) -> None:
        target = self.path(p)
        print(f"write {target} ({len(text)} bytes)")
        if not self.dry_run:
            write_atomic(target, text)
            os.chmod(target, mode)

    def remove(self, p: Path) -> None:
        target = self.path(p)
        print(f"remove {target}")
        if not self.dry_run:
            target.unlink(missing_ok=True)

    def run(self, *cmd: str) -> None:
        if self.root is not None:
            print(f"skip (--root): {' '.join(cmd)}")
            return
        print(f"run {' '.join(cmd)}")
        if not self.dry_run:
            subprocess.run(cmd, check=True)


def install(args: argparse.Namespace) -> int:
    steps = Steps(args.dry_run, Path(args.root) if args.root else None)
    venv = Path(sys.prefix)
    config = Path(args.config)
    source = Path(args.source_config)
    if not (venv / "bin" / "edge-app").exists():
        print(f"edge-app service: {venv}/bin/edge-app not found: install from the project's venv",
              file=sys.stderr)
        return 2
    if steps.root is None and not args.dry_run and os.geteuid() != 0:
        return fail("service install", "needs root (sudo)")
    if shutil.which("useradd") and steps.root is None:
        exists = subprocess.run(["id", "-u", args.user], capture_output=True).returncode == 0
        if not exists:
            steps.run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                      "--groups", "video", args.user)
    if steps.path(config).exists():
        print(f"keep existing {steps.path(config)} (never overwritten)")
    else:
        if not source.is_file():
            return fail("service", f"source config {source} not found")
        steps.write(config, device_config(source), 0o640)
    steps.write(Path("/etc/systemd/system") / UNIT_NAME, render_unit(venv, config, args.user))
    steps.run("systemctl", "daemon-reload")
    steps.run("systemctl", "enable", UNIT_NAME)
    print(f"installed: systemctl start {UNIT_NAME}; journalctl -u {UNIT_NAME} -f")
    return 0


def uninstall(args: argparse.Namespace) -> int:
    steps = Steps(args.dry_run, Path(args.root) if args.root else None)
    steps.run("systemctl", "disable", "--now", UNIT_NAME)
    steps.remove(Path("/etc/systemd/system") / UNIT_NAME)
    steps.run("systemctl", "daemon-reload")
    print(f"kept {steps.path(Path(args.config))} and /var/lib/edge-app (remove them by hand if wanted)")
    return 0


def main(args: argparse.Namespace) -> int:
    return install(args) if args.action == "install" else uninstall(args)
