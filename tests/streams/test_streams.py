"""Several cameras in one real ``edge-app run`` process: per-stream status and views, a killed RTSP camera
that never stalls the others, streams added and removed over HTTP (fds and threads flat), SIGHUP re-reading
[[streams]], track ids per stream."""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.gst_helpers import free_port, require_gst, start_rtsp_server
from tests.test_app import Running, http_get

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

MODELS = f"""
[models.det]
kind = "detector"
artifact = "{ROOT}/edge_app/demo/detector.onnx"
[models.det.tracker]
enabled = true
"""


def write(tmp_path: Path, streams: str, port: int, extra: str = "") -> Path:
    path = tmp_path / "streams.toml"
    path.write_text(f"""
[source]
width = 320
height = 240
fps = 6.0
{MODELS}
[output.http]
port = {port}
[labels]
sample_every = 0
[logging]
file = ""
{extra}
{streams}
""")
    return path


def synthetic(name: str, seed: int, extra: str = "") -> str:
    return f'[[streams]]\nname = "{name}"\nuri = "synthetic://?seed={seed}"\n{extra}\n'


def status(port: int) -> dict:
    code, body = http_get(f"http://127.0.0.1:{port}/status")
    assert code == 200
    return json.loads(body)


def request(method: str, url: str, body: object = None, token: str = "") -> tuple[int, dict]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"text": raw.decode()}


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = predicate()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def rss_mb(pid: int) -> float:
    return next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")) / 1024


def counts(pid: int) -> tuple[int, int]:
    """(open fds, threads) of a process, from /proc."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("Threads:"))
    return fds, threads


def test_four_streams_one_rtsp_camera_killed_and_restarted_the_others_never_stop(tmp_path):
    require_gst()
    port, rtsp_port = free_port(), free_port()
    server = start_rtsp_server(rtsp_port)
    cam = (f'[[streams]]\nname = "cam"\nuri = "rtsp://127.0.0.1:{rtsp_port}/test"\nreconnect_initial_s = 0.3\n'
           'reconnect_max_s = 1.0\nstall_timeout_s = 2.0\n')
    cfg = write(tmp_path, synthetic("a", 1) + synthetic("b", 2) + synthetic("c", 3) + cam, port)
    app = Running(cfg, max_seconds=150)
    try:
        app.wait_event("first_frame")
        wait_for(lambda: all(s["frames"] > 0 for s in status(port)["streams"].values())
                 and len(status(port)["streams"]) == 4, 60, "frames on all four streams")
        s0 = status(port)
        assert set(s0["streams"]) == {"a", "b", "c", "cam"}
        for name, st in s0["streams"].items():
            assert {"fps", "frames", "source"} <= set(st), name
        # per-stream views
        assert http_get(f"http://127.0.0.1:{port}/streams/cam.jpg")[0] == 200
        assert http_get(f"http://127.0.0.1:{port}/streams/nope.jpg")[0] == 404
        code, one = http_get(f"http://127.0.0.1:{port}/streams/a/status")
        assert code == 200 and json.loads(one)["source"] == "playing"
        metrics = http_get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        assert 'edge_stream_fps{stream="cam"}' in metrics and 'edge_stream_frames_total{stream="a"}' in metrics

        server.kill()
        server.wait()
        before = {n: st["frames"] for n, st in status(port)["streams"].items()}
        lost_seen = False
        for _ in range(8):  # the camera is away: the synthetic streams go on, second after second
            time.sleep(1.0)
            now = status(port)["streams"]
            for n in ("a", "b", "c"):
                assert now[n]["frames"] > before[n], f"stream {n} stalled while cam was away: {now[n]}"
            before = {n: st["frames"] for n, st in now.items()}
            lost_seen |= now["cam"]["source"] == "reconnecting"
        assert lost_seen, "the killed camera was never reported reconnecting"
        health = json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])
        assert health["state"] in ("degraded", "ok") and http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200

        server = start_rtsp_server(rtsp_port)
        frames_cam = status(port)["streams"]["cam"]["frames"]
        wait_for(lambda: (st := status(port)["streams"]["cam"])["source"] == "playing" and st["frames"] > frames_cam + 3,
                 60, "the camera back")
        now = status(port)["streams"]
        for n in ("a", "b", "c"):
            assert now[n]["frames"] > before[n]
        assert now["cam"]["reconnects"] >= 1
    finally:
        app.stop()
        server.kill()


def test_streams_added_and_removed_over_http_20_times_leave_fds_and_threads_flat(tmp_path):
    require_gst()
    port = free_port()
    cfg = write(tmp_path, synthetic("base", 1), port)
    app = Running(cfg, max_seconds=240)
    url = f"http://127.0.0.1:{port}/api/streams"
    try:
        app.wait_event("first_frame")
        pid = app.proc.pid
        baseline = None
        rss: list[float] = []
        clip = ROOT / "edge_app" / "demo" / "people.mp4"
        for i in range(20):
            # in turn a GStreamer pipeline (test://), a Python source, and a real clip decoded at 768x432
            # (where the heap grew with every cycle before issue 21): all must be freed
            body = [{"name": "extra", "uri": "test://", "fps": 15},
                    {"name": "extra", "uri": "synthetic://?seed=9", "fps": 15},
                    {"name": "extra", "uri": f"file://{clip}", "width": 768, "height": 432, "fps": 10}][i % 3]
            code, body = request("POST", url, body)
            assert code == 201, body
            wait_for(lambda: status(port)["streams"].get("extra", {}).get("frames", 0) > 0, 30, f"frames of extra #{i}")
            code, body = request("DELETE", f"{url}/extra")
            assert code == 200 and body["streams"] == ["base"], body
            assert "extra" not in status(port)["streams"]
            if i == 2:
                time.sleep(0.5)
                baseline = counts(pid)  # after one of each kind: lazily created pools and caches exist
                rss0 = rss_mb(pid)
            rss.append(round(rss_mb(pid)))
        time.sleep(0.5)
        fds, threads = counts(pid)
        assert baseline is not None
        print("RSS per cycle (MB):", rss)
        # memory given back too (before issue 21, two streams added and removed left 347 MB from 242 MB)
        assert rss_mb(pid) <= 1.10 * rss0, f"RSS grew: {rss0:.0f} -> {rss_mb(pid):.0f} MB ({rss})"
        assert fds <= baseline[0] + 2, f"fds grew: {baseline[0]} -> {fds}"
        assert threads <= baseline[1] + 2, f"threads grew: {baseline[1]} -> {threads}"
        assert status(port)["streams"]["base"]["source"] == "playing"

        # bad JSON: 400 naming the field, nothing changed
        before = request("GET", url)[1]
        code, body = request("POST", url, {"name": "x", "uri": "synthetic://", "fps": "fast"})
        assert code == 400 and any("streams.x.fps = 'fast'" in p for p in body["problems"]), body
        code, body = request("POST", url, {"name": "base", "uri": "synthetic://"})
        assert code == 400 and any("another stream has this name" in p for p in body["problems"]), body
        code, body = request("POST", url, {"uri": "synthetic://"})
        assert code == 400 and any("stream.name" in p for p in body["problems"]), body
        code, body = request("POST", url, b"{not json")
        assert code == 400 and "not JSON" in body["error"], body
        assert request("DELETE", f"{url}/nope")[0] == 404
        assert request("GET", url)[1] == before
    finally:
        app.stop()


def test_api_writes_need_the_token_in_the_header(tmp_path):
    port = free_port()
    cfg = write(tmp_path, synthetic("base", 1), port)
    cfg.write_text(cfg.read_text().replace(f"port = {port}", f'port = {port}\ntoken = "s3cret"'))
    app = Running(cfg)
    url = f"http://127.0.0.1:{port}/api/streams"
    try:
        app.wait_event("first_frame")
        assert request("POST", url, {"name": "x", "uri": "synthetic://"})[0] == 401
        assert request("POST", url + "?token=s3cret", {"name": "x", "uri": "synthetic://"})[0] == 401
        assert request("POST", url, {"name": "x", "uri": "synthetic://"}, token="s3cret")[0] == 201
        assert request("DELETE", url + "/x", token="s3cret")[0] == 200
    finally:
        app.stop()


def test_sighup_rereads_streams_and_leaves_unchanged_ones_running(tmp_path):
    port = free_port()
    cfg = write(tmp_path, synthetic("a", 1) + synthetic("b", 2), port)
    app = Running(cfg)
    try:
        app.wait_event("first_frame")
        wait_for(lambda: status(port)["streams"]["a"]["frames"] > 5, 30, "frames of a")
        frames_a = status(port)["streams"]["a"]["frames"]
        cfg.write_text(cfg.read_text().replace(synthetic("b", 2), synthetic("c", 3)))
        app.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: set(status(port)["streams"]) == {"a", "c"}, 30, "streams a and c")
        wait_for(lambda: status(port)["streams"]["c"]["frames"] > 0, 30, "frames of c")
        assert status(port)["streams"]["a"]["frames"] > frames_a  # a kept running: its count was not reset
        # a broken edit is refused and changes nothing
        cfg.write_text(cfg.read_text() + '\n[[streams]]\nname = "a"\nuri = "synthetic://"\n')
        app.proc.send_signal(signal.SIGHUP)
        event = app.wait_event("reload refused", timeout=20)
        assert "another stream has this name" in event["error"]
        assert set(status(port)["streams"]) == {"a", "c"}
    finally:
        app.stop()


def test_track_ids_belong_to_their_stream(tmp_path):
    """Two streams of the same scene, every frame (realtime = false): each stream's tracker numbers its own
    objects from 1, so both give the same id sequence (a shared counter would interleave them)."""
    port = free_port()
    events = tmp_path / "events.jsonl"
    cfg = write(tmp_path, synthetic("left", 5, "realtime = false") + synthetic("right", 5, "realtime = false"),
                port, extra=f'[events]\nfile = "{events}"\nstate_dir = "{tmp_path / "ev"}"\nsnapshots = false\n')
    app = Running(cfg)
    try:
        app.wait_event("first_frame")
        wait_for(lambda: min(s["frames"] for s in status(port)["streams"].values()) > 60, 90, "60 frames each")
    finally:
        app.stop()
    new = [json.loads(line) for line in events.read_text().splitlines()]
    new = [e for e in new if e["type"] == "track_new"]
    ids = {s: [e["track_id"] for e in new if e["stream"] == s] for s in ("left", "right")}
    k = min(len(ids["left"]), len(ids["right"]))
    assert k >= 3, ids
    assert ids["left"][:k] == ids["right"][:k]
    assert ids["left"][0] == 1 and ids["right"][0] == 1


def _probe(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
                           "-show_entries", "stream=codec_name,width,height", "-of", "json", url],
                          capture_output=True, text=True, timeout=30)


def test_each_stream_has_its_rtsp_mount_and_its_recording(tmp_path):
    """Two streams of different sizes: an RTSP mount each (a real client reads both), a recording folder each
    (valid MP4 after SIGTERM); a stream removed over HTTP loses its mount and finalises its recording."""
    require_gst()
    port, rtsp_port = free_port(), free_port()
    extra = (f'[output.rtsp]\nenabled = true\nport = {rtsp_port}\n'
             f'[output.record]\nenabled = true\ndirectory = "{tmp_path / "rec"}"\nsegment_s = 2\n')
    cfg = write(tmp_path, synthetic("a", 1) + synthetic("b", 2, "width = 256\nheight = 192"), port, extra)
    app = Running(cfg)
    try:
        app.wait_event("first_frame")
        wait_for(lambda: all(s["frames"] > 3 for s in status(port)["streams"].values()), 30, "frames")
        sizes = {}
        for name in ("a", "b"):
            probe = _probe(f"rtsp://127.0.0.1:{rtsp_port}/live/{name}")
            assert probe.returncode == 0, probe.stderr
            st = json.loads(probe.stdout)["streams"][0]
            sizes[name] = (st["codec_name"], st["width"], st["height"])
        assert sizes == {"a": ("h264", 320, 240), "b": ("h264", 256, 192)}
        assert request("DELETE", f"http://127.0.0.1:{port}/api/streams/b")[0] == 200
        assert _probe(f"rtsp://127.0.0.1:{rtsp_port}/live/b").returncode != 0  # unmounted
        b_files = sorted((tmp_path / "rec" / "b").glob("*.mp4"))
        time.sleep(2.5)
    finally:
        app.stop()
    for name, files in (("a", sorted((tmp_path / "rec" / "a").glob("*.mp4"))), ("b", b_files)):
        assert files, f"no recording of {name}"
        for f in files:
            r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(f)],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and float(json.loads(r.stdout)["format"]["duration"]) > 0, (f, r.stderr)


@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs Debian's chromium-driver (make test installs it)")
def test_page_shows_a_grid_and_a_stream_chosen_by_click(tmp_path):
    """A real browser: a tile per stream with live pictures, a click shows that stream large with its own
    numbers; a stream added over HTTP appears in the grid without a reload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import driver as _driver

    port = free_port()
    cfg = write(tmp_path, synthetic("north", 1) + synthetic("south", 2), port)
    app = Running(cfg)
    driver = None
    try:
        app.wait_event("first_frame")
        driver = _driver(tmp_path)
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 20)
        loaded = "return [...document.querySelectorAll('#grid img')].filter(i => i.complete && i.naturalWidth > 0).length"
        wait.until(lambda d: d.execute_script(loaded) == 2)
        assert driver.find_element(By.ID, "grid").is_displayed()
        assert "streams/north.mjpg" in driver.find_element(By.ID, "stream").get_attribute("src")
        driver.find_element(By.CSS_SELECTOR, '#grid a[data-name="south"]').click()
        wait.until(lambda d: "streams/south.mjpg" in d.find_element(By.ID, "stream").get_attribute("src"))
        wait.until(lambda d: d.find_element(By.ID, "source").text.startswith("south: synthetic://?seed=2"))
        assert "south" in driver.current_url
        assert request("POST", f"http://127.0.0.1:{port}/api/streams", {"name": "east", "uri": "synthetic://?seed=3"})[0] == 201
        wait.until(lambda d: d.execute_script(loaded) == 3)
        caption = driver.find_element(By.ID, "cap-east").text
        assert caption.startswith("east") and "fps" in caption
    finally:
        if driver is not None:
            driver.quit()
        app.stop()
