"""Logging: JSON lines in a rotating file and on stdout when stdout is not a terminal (journald keeps
them); on a terminal, one short human line every few seconds and warnings in words (``--log-format``
chooses). The console's progress line (logger ``edge_app.console``) never goes to the file."""
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


CONSOLE = "edge_app.console"  # the terminal's progress line: text console only
LOG_FORMATS = ("auto", "text", "json")


def _ms(latency: dict[str, Any], model: str) -> float:
    return sum(latency.get(f"{model}.{stage}", {}).get("p50", 0.0) for stage in ("preprocess", "infer", "postprocess"))


def progress_line(p: dict[str, Any]) -> str:
    """'15.0 fps | detector 12.1 ms, segmenter 27.3 ms | detector P 0.71 R 0.76 (139) | source playing'."""
    parts = [f"{p.get('fps', 0.0):5.1f} fps"]
    lat = p.get("latency_ms", {})
    models = p.get("models", [])
    if models:
        parts.append(", ".join(f"{m} {_ms(lat, m):.1f} ms" for m in models))
    scores = []
    for name, r in (p.get("rolling") or {}).items():
        if r.get("frames"):
            if r.get("task") == "segmentation":
                scores.append(f"{name} mIoU {r['miou']:.2f} ({r['frames']})" if r.get("miou") is not None else "")
            else:
                pr = [f"{k[0].upper()} {r[k]:.2f}" for k in ("precision", "recall") if r.get(k) is not None]
                scores.append(f"{name} {' '.join(pr)} ({r['frames']})")
    if any(scores):
        parts.append(", ".join(x for x in scores if x))
    dropped = (p.get("counters") or {}).get("dropped_output", 0)
    parts.append(f"source {p.get('source', '?')}" + (f", {dropped} dropped" if dropped else ""))
    return " | ".join(parts)


def _words(entry: dict[str, Any]) -> str:
    """A structured event in words, for people."""
    event = entry.get("event")
    if event == "progress":
        return progress_line(entry)
    if event == "health":
        reasons = "; ".join(entry.get("reasons") or [])
        return f"health {entry.get('state')}" + (f": {reasons}" if reasons else "")
    if event == "drift":
        return f"drift: {entry.get('message')}"
    if event == "started":
        return f"started: {entry.get('source')} -> {', '.join(map(str, entry.get('outputs') or [])) or 'no output'}"
    if event == "ready":
        return f"ready (READY=1): models loaded, serving {', '.join(map(str, entry.get('outputs') or [])) or 'no output'}"
    if event == "first_frame":
        return f"first frame through the pipeline after {entry.get('seconds')} s"
    if event == "stopped":
        return f"stopped in {entry.get('seconds')} s"
    fields = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "event")
    return f"{event}: {fields}" if fields else str(event)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = getattr(record, "payload", None)
        text = _words(payload) if isinstance(payload, dict) else record.getMessage()
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        line = f"{stamp} {level}{text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Only(logging.Filter):
    """Keep (``keep=True``) or drop the console's progress records; drop the periodic JSON metrics
    from a text console (the progress line says it shorter)."""

    def __init__(self, console: bool, text: bool) -> None:
        super().__init__()
        self.console, self.text = console, text

    def filter(self, record: logging.LogRecord) -> bool:
        is_progress = record.name == CONSOLE
        if not self.console:
            return not is_progress
        if not self.text:
            return not is_progress
        payload = getattr(record, "payload", None)
        return not (isinstance(payload, dict) and payload.get("event") == "metrics")


def console_format(choice: str = "auto", stream: Any = None) -> str:
    """'text' or 'json' for the console: auto = text on a terminal, JSON otherwise (journald, pipes)."""
    if choice not in LOG_FORMATS:
        raise ValueError(f"log format {choice!r}: expected one of {LOG_FORMATS}")
    stream = sys.stdout if stream is None else stream
    if choice != "auto":
        return choice
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


def setup_logging(level: str = "info", file: Path | None = None, max_bytes: int = 10_000_000,
                  backups: int = 3, console: str = "auto") -> str:
    """Handlers for the console (text or JSON, see ``console_format``) and the rotating JSON file.
    Returns the console format chosen."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(getattr(logging, level.upper()))
    fmt = JsonFormatter()
    chosen = console_format(console)
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(TextFormatter() if chosen == "text" else fmt)
    out.addFilter(_Only(console=True, text=chosen == "text"))
    root.addHandler(out)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        rot = logging.handlers.RotatingFileHandler(file, maxBytes=max_bytes, backupCount=backups)
        rot.setFormatter(fmt)
        rot.addFilter(_Only(console=False, text=False))
        root.addHandler(rot)
    return chosen


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """One structured line: {"event": event, ...fields}."""
    logger.log(level, event, extra={"payload": {"event": event, **fields}})
