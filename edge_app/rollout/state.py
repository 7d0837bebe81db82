"""What the rollout remembers across restarts, in ``rollout.state_dir`` (JSON, written atomically):

- ``models.json``: per model, the artifact it runs now when a promotion replaced the config's (with its
  thresholds file and sha256) and the one it replaced (kept on disk for a rollback). ``edge-app run`` starts
  the promoted artifact; a rollback removes the entry (the config's artifact again).
- ``commands.json``: every fleet command seen, by id, with its outcome: a command delivered again (the
  retained command after a restart, a broker redelivery) is resumed where it stopped or answered with its
  outcome, never applied twice.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from ..core.artifact import write_atomic

log = logging.getLogger("edge_app.rollout")


class JsonState:
    """A small JSON object on disk; every change rewritten atomically (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text())
                self.data = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError) as exc:  # a broken file is said and set aside, never fatal
                log.error("rollout: %s unreadable (%s); starting from the config's models", self.path, exc)
                self.path.replace(self.path.with_suffix(".bad"))

    def get(self, key: str) -> Any:
        with self._lock:
            return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value
            write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True, default=str))


def active_artifacts(state_dir: Path) -> dict[str, dict[str, Any]]:
    """model name -> {"artifact", "thresholds_file", "precision", "sha256", ...} of promoted models whose
    file is still there (read at start, before the models are opened)."""
    path = Path(state_dir) / "models.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for name, entry in (data.items() if isinstance(data, dict) else []):
        if isinstance(entry, dict) and Path(str(entry.get("artifact", ""))).is_file():
            out[name] = entry
        elif isinstance(entry, dict):
            log.error("rollout: promoted artifact of %s (%s) is gone; running the config's", name, entry.get("artifact"))
    return out
