"""``edge-app run``: the config file, overridden by the command line (``cli.overrides``), then the app."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..app import App
from ..config import ConfigError
from ..health.memory import limit_arenas
from ..inference.models import ModelError
from ..logs import log_event, setup_logging
from .errors import fail

log = logging.getLogger("edge_app")


def main(args: argparse.Namespace) -> int:
    """``edge-app run [INPUT] [OUTPUT ...] [--model ARTIFACT ...]``: the config file, overridden by the
    command line (``cli.overrides``); every problem named at once, exit 2."""
    from .overrides import run_config

    given = getattr(args, "config", None)
    try:
        # an explicit --config must exist; the default config.toml may be absent when the command line
        # names the input and the models (a config-less run, like jetson-inference's tools)
        cfg = run_config(given or "config.toml", getattr(args, "input", None), getattr(args, "outputs", None),
                         getattr(args, "model", None), required=given is not None,
                         state_dir=getattr(args, "state_dir", None), lines=getattr(args, "line", None),
                         zones=getattr(args, "zone", None))
    except ConfigError as exc:
        return fail("run", f"{exc}")
    lg = cfg.logging
    console = setup_logging(lg.level, cfg.state(lg.file) if lg.file else None, lg.max_bytes, lg.backups,
                            console=getattr(args, "log_format", "auto") or "auto")
    limit_arenas()  # before any thread starts: streams that come and go must not grow the heap
    try:
        app = App(cfg, console, Path(given or "config.toml"))
    except (ModelError, OSError, ValueError, RuntimeError) as exc:
        log_event(log, logging.ERROR, "startup failed", error=str(exc))
        return fail("run", f"{exc}")
    return app.run(getattr(args, "max_seconds", None))
