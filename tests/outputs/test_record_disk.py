"""Recording on a disk that runs out (a real 16 MB tmpfs; mounting needs root, as CI runs): the oldest
segments go first; with nothing left to delete the recording pauses and the health says why; when room
comes back it resumes by itself into new, valid segments."""
import os
import subprocess
import time

import numpy as np
import pytest

from edge_app.core.types import Frame
from edge_app.health.disk import DiskBudget
from tests.gst_helpers import require_gst

pytestmark = pytest.mark.slow


@pytest.fixture()
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root, as CI has): {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _push(rec, seconds: float, fps: float = 15.0) -> None:
    rng = np.random.default_rng(0)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # noise: the encoder spends its bitrate
        rec.write(image, Frame(image, i, 0.0, 0.0))
        i += 1
        time.sleep(1 / fps)


def _free(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_recording_frees_old_segments_then_pauses_then_resumes(small_disk):
    require_gst()
    from edge_app.outputs.record import RecordOutput

    disk = DiskBudget()
    folder = small_disk / "rec"
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (8 * 2**20))             # 8 MB left
    rec = RecordOutput(directory=folder, segment_s=1, max_files=0, width=320, height=240, fps=15.0,
                       bitrate_kbps=4000, disk=disk)   # 0.5 MB a second; keeps 5 MB free (10 s of video)
    try:
        _push(rec, 3)
        first = sorted(p.name for p in folder.glob("edge-*.mp4"))[:1]
        _push(rec, 8)                                    # 4 MB more than the disk has room for
        assert not rec.paused and first and not (folder / first[0]).exists()   # the oldest went first
        assert _free(small_disk) > 3 * 2**20
        for _ in range(12):  # someone else takes every byte the recorder frees: 3 MB stay free
            with open(filler, "ab") as f:
                f.write(b"\0" * max(0, _free(small_disk) - 3 * 2**20))
            _push(rec, 0.5)
        assert rec.paused and "paused" in rec.paused, rec.paused
        assert any(p.startswith("recording: paused") for p in disk.problems()), disk.problems()
        filler.unlink()                                  # room again
        _push(rec, 5)
        assert not rec.paused and not disk.problems()
        made_after = time.time() - 4
        assert any(p.stat().st_mtime > made_after for p in folder.glob("edge-*.mp4"))
    finally:
        rec.close()
    segments = sorted(folder.glob("edge-*.mp4"))
    durations = []
    for seg in segments:  # every segment left is a valid MP4 (finalised at the pause and at close)
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                str(seg)], capture_output=True, text=True)
        assert probe.returncode == 0 and probe.stdout.strip(), (seg.name, probe.stderr)
        durations.append(float(probe.stdout.strip()))
    assert sum(durations) > 2.0, durations
