"""Progress bars for long work (training, evaluation, builds, calibration), one way everywhere.

tqdm when it is installed (the [train] and [eval] extras bring it) and ``enabled``; otherwise the
iterable itself. Every long-running command takes ``--no-progress`` (``add_progress_flag``).
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any


def progress(it: Iterable[Any], total: int | None = None, desc: str = "", enabled: bool = True,
             leave: bool = False) -> Any:
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, total=total, desc=desc, leave=leave, dynamic_ncols=True)


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
