"""Logging: JSON lines on stdout (journald keeps them) and in a rotating file."""
from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from pathlib import Path
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": round(record.created, 3),
                                 "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
                                 "level": record.levelname.lower(), "logger": record.name}
        payload = getattr(record, "payload", None)
        if isinstance(payload, dict):
            entry.update(payload)
        else:
            entry["msg"] = record.getMessage()
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str = "info", file: Path | None = None, max_bytes: int = 10_000_000,
                  backups: int = 3) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(getattr(logging, level.upper()))
    fmt = JsonFormatter()
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(fmt)
    root.addHandler(out)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        rot = logging.handlers.RotatingFileHandler(file, maxBytes=max_bytes, backupCount=backups)
        rot.setFormatter(fmt)
        root.addHandler(rot)


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """One structured line: {"event": event, ...fields}."""
    logger.log(level, event, extra={"payload": {"event": event, **fields}})
