"""Real GStreamer capture: test, file, RTSP (killed and restarted: reconnect), and no pipeline injection."""
import time

import numpy as np
import pytest

from tests.gst_helpers import free_port, read_frames, require_gst, start_rtsp_server

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _gst():
    require_gst()


def _source(uri, **kw):
    from edge_app.sources import SourceConfig, open_source
    return open_source(SourceConfig(**{"uri": uri, "width": 320, "height": 240, "fps": 30,
                                               "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, **kw}))


def test_test_source_delivers_bgr_frames_at_size():
    src = _source("test://").start()
    try:
        frames = read_frames(src, 1.5)
    finally:
        src.stop()
    assert len(frames) >= 10
    f = frames[-1]
    assert f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8
    assert f.image.std() > 5  # a real picture, not a blank buffer
    assert all(a.index < b.index for a, b in zip(frames, frames[1:]))


def test_file_source_plays_and_loops(shared_data):
    video = shared_data / "videos" / "intel_car-detection.mp4"  # 377 frames
    src = _source(f"file://{video}", realtime=False, loop=True).start()
    frames = []
    try:
        deadline = time.monotonic() + 60
        while src.stats.loops < 1 and time.monotonic() < deadline:
            f = src.read(0.5)
            if f is not None:
                frames.append((f.index, f.pts, f.image.shape))
        for _ in range(30):  # and some frames of the second pass
            f = src.read(0.5)
            if f is not None:
                frames.append((f.index, f.pts, f.image.shape))
    finally:
        src.stop()
    assert src.stats.errors == 0, src.stats.last_error
    assert frames[0][2] == (240, 320, 3)
    # it looped: stream position and frame number start again at 0 after the last frame
    restarts = [i for i in range(1, len(frames)) if frames[i][0] < frames[i - 1][0]]
    assert src.stats.loops >= 1 and len(restarts) == 1, restarts
    first_pass, second = frames[:restarts[0]], frames[restarts[0]:]
    assert [f[0] for f in first_pass] == list(range(377))  # every frame numbered by its position
    assert second[0][0] == 0 and second[0][1] < 0.1 and first_pass[-1][1] > 29


def test_file_not_realtime_loses_no_frame(shared_data):
    # Back-pressure: a slow consumer gets every frame of the file, in order, none dropped.
    video = shared_data / "videos" / "intel_car-detection.mp4"
    src = _source(f"file://{video}", realtime=False, loop=False).start()
    got = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            f = src.read(0.5)
            if f is None:
                if src.stats.state == "ended":
                    break
                continue
            got.append(f.index)
            if len(got) % 50 == 0:
                time.sleep(0.3)  # the consumer falls behind now and then
    finally:
        src.stop()
    assert src.stats.errors == 0, src.stats.last_error
    assert src.stats.dropped == 0
    assert got == list(range(len(got)))
    assert len(got) == 377  # every frame of the clip (ffprobe nb_frames)


def test_newest_frame_policy_bounds_frame_age():
    src = _source("test://").start()
    try:
        time.sleep(1.0)  # a slow consumer: the source keeps replacing the slot
        ages = []
        for _ in range(5):
            f = src.read(1.0)
            ages.append(time.monotonic() - f.captured)
            time.sleep(0.2)
    finally:
        src.stop()
    assert max(ages) < 0.2, ages  # never a backlog: at most one frame period old
    assert src.stats.dropped > 10


def test_file_path_is_never_parsed_as_pipeline(tmp_path):
    target = tmp_path / "pwned"
    uri = f"file://{tmp_path}/x.mp4 ! filesink location={target}"
    src = _source(uri).start()
    try:
        frames = read_frames(src, 1.0)
    finally:
        src.stop()
    assert frames == []
    assert not target.exists()
    assert src.stats.errors >= 1 and src.stats.reconnects >= 1  # treated as a missing file, retried


def test_rtsp_reconnects_after_server_restart():
    port = free_port()
    server = start_rtsp_server(port)
    src = _source(f"rtsp://127.0.0.1:{port}/test", rtsp_latency_ms=50, stall_timeout_s=1.5).start()
    try:
        assert len(read_frames(src, 3.0)) > 10, src.stats
        server.kill()
        server.wait()
        time.sleep(2.5)
        assert src.stats.state in ("reconnecting", "playing")
        lost_at = src.stats.frames
        server = start_rtsp_server(port)
        t0 = time.monotonic()
        while src.stats.frames <= lost_at + 5 and time.monotonic() - t0 < 15:
            time.sleep(0.1)
        assert src.stats.frames > lost_at + 5, src.stats
        assert src.stats.reconnects >= 1 and src.stats.state == "playing"
    finally:
        src.stop()
        server.kill()
        server.wait()
