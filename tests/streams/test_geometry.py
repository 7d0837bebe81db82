"""Lines and zones edited on the live page (issue 24), against a running app: saved into the config file
(comments kept), applied without dropping the stream (its frames go on, an unchanged line keeps its
counts), refused with the reason for bad shapes, a stale file or a write without the token; and in a
real browser a line drawn with two clicks on the people clip counts the person walking across it."""
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.browser import NEEDS_DRIVER
from tests.browser import driver as make_driver
from tests.gst_helpers import free_port, require_gst
from tests.test_app import Running

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "edge_app" / "demo"
TOKEN = "geo-s3cret"


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""# my shop camera: keep this comment
[source]
uri = "synthetic://"
width = 640
height = 480
fps = 15.0

[models.detector]
kind = "detector"
artifact = "{DEMO / 'detector.onnx'}"
thresholds_file = "{DEMO / 'detector.thresholds.json'}"
[models.detector.tracker]
enabled = true

[[analytics.lines]]
name = "middle"   # the door
points = [[320, 40], [320, 440]]

[output.http]
port = {port}
token = "{TOKEN}"

[labels]
sample_every = 0

[logging]
file = "{tmp_path / 'log.jsonl'}"
""")
    return path


def _call(port: int, method: str, path: str, body=None, token: bool = True) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {TOKEN}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"error": raw.decode()}


def _analytics(port: int) -> dict:
    return _call(port, "GET", "/status")[1]["streams"]["main"]["analytics"]


def _wait(pred, seconds: float):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.3)
    return None


@pytest.fixture()
def app(tmp_path):
    require_gst()
    port = free_port()
    config = _config(tmp_path, port)
    running = Running(config, max_seconds=180)
    running.wait_event("first_frame")
    yield port, config
    running.stop()


def test_lines_and_zones_saved_into_the_file_and_counted_without_dropping_the_stream(app):
    port, config = app
    code, g = _call(port, "GET", "/api/geometry/main")
    assert code == 200 and g["size"] == [640, 480] and [l["name"] for l in g["lines"]] == ["middle"]
    assert _wait(lambda: sum(_analytics(port)["lines"]["middle"]["in"].values()) +
                 sum(_analytics(port)["lines"]["middle"]["out"].values()) > 0, 60), "nothing crossed the middle"
    before = _analytics(port)["lines"]["middle"]
    frames = _call(port, "GET", "/status")[1]["streams"]["main"]["frames"]
    body = {"version": g["version"], "lines": g["lines"] + [{"name": "across", "points": [[40, 240], [600, 240]]}],
            "zones": [{"name": "left", "points": [[0, 0], [320, 0], [320, 480], [0, 480]]}]}
    code, answer = _call(port, "POST", "/api/geometry/main", body)
    assert code == 200, answer
    text = config.read_text()
    assert text.startswith("# my shop camera: keep this comment") and "# the door" in text
    assert 'name = "across"' in text and 'name = "left"' in text
    def applied():
        a = _analytics(port)
        return a if "across" in a["lines"] and "left" in a["zones"] else None

    after = _wait(applied, 10)
    assert after, _analytics(port)
    kept = after["lines"]["middle"]
    assert sum(kept["in"].values()) >= sum(before["in"].values())          # unchanged line: its counts go on
    assert _wait(lambda: _call(port, "GET", "/status")[1]["streams"]["main"]["frames"] > frames + 10, 10)
    assert _wait(lambda: _analytics(port)["zones"]["left"]["entries"], 60)  # the new zone counts

    # a stale version (someone edited the file meanwhile): refused, nothing written
    config.write_text(config.read_text() + "\n# edited by hand\n")
    code, answer = _call(port, "POST", "/api/geometry/main", {**body, "version": answer["version"]})
    assert code == 409 and "changed on disk" in answer["problems"][0]
    assert config.read_text().endswith("# edited by hand\n")


def test_a_config_that_cannot_be_written_is_refused_saying_so_and_nothing_changes(app):
    """As under the unit's ProtectSystem=strict (/etc read-only): the write fails, the answer says where and
    what to do, the running lines stay. (A directory where the check file goes fails as root too.)"""
    port, config = app
    blocker = config.with_name(f".{config.name}.geometry-check")
    blocker.mkdir()
    (blocker / "keep").write_text("x")
    before = config.read_text()
    g = _call(port, "GET", "/api/geometry/main")[1]
    code, answer = _call(port, "POST", "/api/geometry/main",
                         {"version": g["version"], "lines": [{"name": "new", "points": [[10, 10], [600, 10]]}],
                          "zones": []})
    assert code == 409, answer
    assert f"cannot save into {config}" in answer["error"] and "nothing was changed" in answer["error"]
    assert config.read_text() == before
    assert list(_analytics(port)["lines"]) == ["middle"]
    assert not [p for p in config.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind


@pytest.mark.parametrize("lines, zones, token, code, names", [
    ([{"name": "a", "points": [[10, 10]]}], [], True, 400, "lines[0]"),                           # one point
    ([], [{"name": "z", "points": [[0, 0], [100, 100], [100, 0], [0, 100]]}], True, 400, "zones[0]"),  # crosses itself
    ([{"name": "a", "points": [[10, 10], [900, 10]]}], [], True, 400, "outside"),                 # off the frame
    ([{"name": "a", "points": [[10, 10], [50, 10]]}, {"name": "a", "points": [[10, 50], [50, 50]]}], [], True, 400,
     "name"),                                                                                      # name twice
    ([{"name": "a", "points": [[10, 10], [50, 10]]}], [], False, 401, ""),                        # no token
])
def test_bad_shapes_are_refused_naming_them_and_change_nothing(app, lines, zones, token, code, names):
    port, config = app
    before = config.read_text()
    version = _call(port, "GET", "/api/geometry/main")[1]["version"]
    got, answer = _call(port, "POST", "/api/geometry/main", {"version": version, "lines": lines, "zones": zones},
                        token=token)
    assert got == code, answer
    assert names in " ".join(answer.get("problems", [])) or code == 401, answer
    assert config.read_text() == before
    assert list(_analytics(port)["lines"]) == ["middle"]


@NEEDS_DRIVER
def test_a_line_drawn_in_the_browser_counts_the_person_crossing_it(tmp_path):
    """The people clip with the COCO detector: two clicks draw a line across the hall; she is counted."""
    require_gst()
    coco = DEMO / "coco.onnx"
    if not coco.is_file():
        pytest.skip("needs edge_app/demo/coco.onnx")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"""[source]
uri = "{DEMO / 'people.mp4'}"
fps = 10.0
[models.coco]
kind = "detector"
artifact = "{coco}"
thresholds_file = "{DEMO / 'coco.thresholds.json'}"
[models.coco.tracker]
enabled = true
[output.http]
port = {port}
[labels]
sample_every = 0
""")
    app = Running(config, max_seconds=240)
    driver = make_driver(tmp_path)
    try:
        app.wait_event("first_frame")
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.execute_script("return document.getElementById('stream').naturalWidth > 0"))
        driver.find_element(By.ID, "edit").click()
        wait.until(lambda d: "saved to" in d.find_element(By.ID, "edit-msg").text)
        driver.find_element(By.ID, "add-line").click()
        name = driver.find_element(By.ID, "shape-name")
        name.clear()
        name.send_keys("hall")
        svg = driver.find_element(By.ID, "editor")
        w, h = svg.size["width"], svg.size["height"]
        # a vertical line at 70 % of the width, top to bottom (offsets from the element's centre): the
        # person walks in, stands at the table (45 %: standing by a line is no crossing) and leaves right
        ActionChains(driver).move_to_element_with_offset(svg, int(w * 0.2), int(-h * 0.45)).click().perform()
        ActionChains(driver).move_to_element_with_offset(svg, int(w * 0.2), int(h * 0.45)).click().perform()
        driver.find_element(By.ID, "save").click()
        wait.until(lambda d: "counting now" in d.find_element(By.ID, "edit-msg").text)
        counted = _wait(lambda: (lambda a: sum(a["lines"]["hall"]["in"].values()) + sum(a["lines"]["hall"]["out"].values()))(
            _call(port, "GET", "/status")[1]["streams"]["main"]["analytics"]), 90)
        shot = driver.get_screenshot_as_png()
    finally:
        driver.quit()
        app.stop()
    (tmp_path / "editor.png").write_bytes(shot)
    assert 'name = "hall"' in config.read_text()
    assert counted, "nobody was counted crossing the line drawn in the browser"
