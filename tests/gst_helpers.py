"""Helpers for tests that use real GStreamer: skip cleanly where its bindings are missing."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def require_gst() -> None:
    try:
        from edge_app.gst import gst
        gst()
    except Exception as exc:  # GstUnavailable, or gi missing
        pytest.skip(f"GStreamer bindings unavailable: {exc}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_rtsp_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("rtsp_test_server.py")), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise RuntimeError(f"RTSP test server did not start: {proc.stderr.read()}")
    time.sleep(0.2)
    return proc


def read_frames(source, seconds: float) -> list:
    frames, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        f = source.read(0.2)
        if f is not None:
            frames.append(f)
    return frames
