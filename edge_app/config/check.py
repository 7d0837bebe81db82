"""``edge-app config check FILE``: print every problem of a config file, or a short summary."""
from __future__ import annotations

import argparse
import sys

from . import ConfigError, load_config


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    models = ", ".join(f"{name} ({m.kind}{'' if m.enabled else ', disabled'})"
                       for name, m in cfg.models.items()) or "none"
    outputs = [name for name in ("http", "rtsp", "record") if getattr(cfg.output, name).enabled]
    streams = "\n".join(f"  {'source' if not cfg.streams else 'stream ' + s.name}: {s.uri} {s.width}x{s.height} "
                        f"@ {s.fps:g} fps" + (f" (models: {', '.join(s.models)})" if s.models else "")
                        for s in cfg.stream_configs())
    print(f"{args.file}: OK\n{streams}\n  models: {models}\n  outputs: {', '.join(outputs) or 'none'}")
    return 0
