"""How a command refuses: ``edge-app COMMAND: what is wrong`` on stderr and exit status 2 (what it was
given is wrong; 1 = it could not do its job). Every command of edge-app, conversion and calibration says
it this way."""
from __future__ import annotations

import sys


def fail(command: str, message: object, code: int = 2) -> int:
    """Print the refusal and return the exit status (``return fail("track", exc)``)."""
    print(f"edge-app {command}: {message}" if command else str(message), file=sys.stderr)
    return code
