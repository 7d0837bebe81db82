"""How a command refuses: ``edge-app COMMAND: what is wrong`` on stderr and exit status 2 (what it was
given is wrong; 1 = it could not do its job). Every command of edge-app, conversion and calibration says
it this way."""
from __future__ import annotations

import argparse
import sys

from ..core.uri import yes_no


def fail(command: str, message: object, code: int = 2) -> int:
    """Print the refusal and return the exit status (``return fail("track", exc)``)."""
    print(f"edge-app {command}: {message}" if command else str(message), file=sys.stderr)
    return code


def bool_arg(value: str) -> bool:
    """argparse ``type=`` for a yes/no flag (``core.uri.yes_no``): anything else is refused as the command's
    usage error, naming the value."""
    out = yes_no(value)
    if out is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return out


def as_flags(problems: list[str]) -> str:
    """The config loader's problems (``key = value: expected ...``) with each key written as its command-line
    flag (``--key-name = value: expected ...``), for commands whose flags are config keys."""
    return "; ".join("--" + key.replace("_", "-") + sep + rest for key, sep, rest in (p.partition(" = ") for p in problems))
