"""GStreamer initialised by several cameras' threads at the same moment (a process's first GStreamer use):
every one gets working namespaces."""
import subprocess
import sys

import pytest

from tests.gst_helpers import require_gst

SCRIPT = """
import threading
from edge_app.gst import gst
barrier, errors, got = threading.Barrier(8), [], []
def start():
    barrier.wait()
    try:
        g = gst()
        got.append((g.GLib.MainLoop, g.Gst.ElementFactory, g.GstApp.AppSink))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=start) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(got), errors)
"""


@pytest.mark.parametrize("attempt", range(6))
def test_first_use_from_eight_threads_at_once(attempt):
    require_gst()
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "8 []", r.stdout + r.stderr
