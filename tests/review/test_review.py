"""The review page and its API against a running app (synthetic scene, the demo detector and segmenter,
sampling every 3rd frame, a token): labels saved through the API land in the inbox as VOC / class-index
PNG and move the rolling numbers at once; writes need the token in the header; a path-traversal id and
malformed bodies get 400 and write nothing; in a real browser (Selenium + Debian's chromium-driver) a box
drawn on the canvas, with its class changed, is saved as the VOC the sampler scores."""
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edge_app.datasets.voc import parse_voc_xml
from tests.browser import NEEDS_DRIVER
from tests.browser import driver as _driver
from tests.gst_helpers import free_port
from tests.test_app import Running, write_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "edge_app" / "demo"
TOKEN = "rev-s3cret"


def call(base: str, path: str, body=None, *, header: bool = True, query: bool = False, raw: bytes | None = None):
    url = base + path + (("&" if "?" in path else "?") + f"token={TOKEN}" if query else "")
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Authorization": f"Bearer {TOKEN}"} if header else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            payload = r.read()
            return r.status, (json.loads(payload) if r.headers.get_content_type() == "application/json" else payload)
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, json.loads(payload)
        except ValueError:
            return exc.code, payload


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    port = free_port()
    models = f"""
[models.det]
kind = "detector"
artifact = "{DEMO / 'detector.onnx'}"
[models.seg]
kind = "segmenter"
artifact = "{DEMO / 'segmenter.onnx'}"
"""
    # unlabelled frames, as a camera gives them: only the reviews score
    cfg = write_config(tmp, "[labels]\nsample_every = 3\n", port=port, models=models, source="synthetic://?labels=off")
    cfg.write_text(cfg.read_text().replace(f"port = {port}", f"port = {port}\ntoken = \"{TOKEN}\""))
    running = Running(cfg, max_seconds=300)
    running.wait_event("first_frame")
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 30
    while time.monotonic() < end and len(call(base, "/api/samples")[1]) < 12:
        time.sleep(0.3)
    yield base, tmp
    running.stop()


def _fresh(base: str, taken: set[str]) -> str:
    """A sample no test has used yet (new ones arrive 5 a second)."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        sid = next((s["id"] for s in call(base, "/api/samples")[1] if not s["reviewed"] and s["id"] not in taken), None)
        if sid is not None:
            taken.add(sid)
            return sid
        time.sleep(0.2)
    raise AssertionError("no new sample in 30 s")


TAKEN: set[str] = set()


def _frames(base: str, model: str) -> int:
    return call(base, "/api/review")[1]["rolling"].get(model, {}).get("frames", 0)


def test_labels_through_the_api_are_scored_at_once(app):
    base, tmp = app
    status, samples = call(base, "/api/samples")
    assert status == 200 and isinstance(samples, list) and all("id" in s for s in samples)
    sid = _fresh(base, TAKEN)
    one = call(base, f"/api/samples/{sid}")[1]
    assert one["size"] == [320, 240] and set(one["models"]) == {"det", "seg"}
    assert call(base, f"/api/samples/{sid}/image")[1][:2] == b"\xff\xd8"
    before_det, before_seg = _frames(base, "det"), _frames(base, "seg")
    boxes = [{"box": [10, 20, 110, 120], "class": "circle"}, {"box": [150.5, 30, 300, 200], "class": "square"}]
    status, answer = call(base, f"/api/samples/{sid}/labels", {"boxes": boxes, "masks": {"seg": "accept"}})
    assert status == 200, answer
    assert sorted(answer["written"]) == sorted([f"{sid}.xml", f"{sid}.seg.png"]) and answer["scored"] == 2
    assert _frames(base, "det") == before_det + 1 and _frames(base, "seg") == before_seg + 1
    _, size, objects = parse_voc_xml(tmp / "var" / "inbox" / "done" / f"{sid}.xml")
    assert size == (320, 240) and [(o[0], o[1]) for o in objects] == [("circle", [10, 20, 110, 120]),
                                                                     ("square", [150.5, 30, 300, 200])]
    assert call(base, f"/api/samples/{sid}")[1]["review"]["boxes"][0]["class"] == "circle"
    # corrected again: saved, not scored twice
    status, again = call(base, f"/api/samples/{sid}/labels", {"boxes": boxes[:1]})
    assert status == 200 and again["written"] == [] and _frames(base, "det") == before_det + 1
    assert call(base, "/api/review")[1]["reviewed"] >= 1


def test_writes_need_the_token_in_the_header(app):
    base, _ = app
    sid = _fresh(base, TAKEN)
    assert call(base, "/api/samples", header=False)[0] == 401
    assert call(base, "/api/samples", header=False, query=True)[0] == 200          # reads: ?token= is fine
    body = {"boxes": []}
    assert call(base, f"/api/samples/{sid}/labels", body, header=False, query=True)[0] == 401
    assert call(base, f"/api/samples/{sid}/labels", body, header=False)[0] == 401
    assert not call(base, f"/api/samples/{sid}")[1]["review"]
    assert call(base, "/status", {"x": 1})[0] == 405                               # not a write route


@pytest.mark.parametrize("path_id", ["..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "1-1%00", "%2e%2e", "x"])
def test_a_path_outside_the_samples_is_never_reached(app, path_id):
    base, tmp = app
    status, _ = call(base, f"/api/samples/{path_id}/image")
    assert status in (400, 404)
    status, _ = call(base, f"/api/samples/{path_id}/labels", {"boxes": []})
    assert status in (400, 404)
    assert not list((tmp / "var" / "inbox").glob("*.xml"))


@pytest.mark.parametrize("body, field", [
    ({"boxes": [{"box": [10, 10, 5, 50], "class": "circle"}]}, "boxes[0].box"),
    ({"boxes": [{"box": [10, 10, 500, 50], "class": "circle"}]}, "boxes[0].box"),
    ({"boxes": [{"box": [1, 2, 3], "class": "circle"}]}, "boxes[0].box"),
    ({"boxes": [{"box": [1, 2, 30, 40], "class": "dog"}]}, "boxes[0].class"),
    ({"boxes": [{"box": [1, 2, 30, 40]}]}, "boxes[0]"),
    ({"boxes": "all of them"}, "boxes"),
    ({"masks": {"det": "accept"}}, "masks.det"),
    ({"masks": {"seg": "maybe"}}, "masks.seg"),
    ({"masks": {"seg": {"png": "!!!"}}}, "masks.seg.png"),
    ({"boxes": [], "colour": "red"}, "colour"),
    ([1, 2], "body"),
    (None, "body"),
])
def test_a_malformed_review_gets_400_naming_the_field_and_writes_nothing(app, body, field):
    base, tmp = app
    sid = _fresh(base, TAKEN)
    raw = b"{not json" if body is None else None
    status, answer = call(base, f"/api/samples/{sid}/labels", body, raw=raw)
    assert status == 400 and answer["error"].startswith(field), answer
    inbox = tmp / "var" / "inbox"
    assert not list(inbox.glob(f"{sid}*")) and not list((inbox / "done").glob(f"{sid}*"))
    assert call(base, f"/api/samples/{sid}")[1]["review"] is None


def test_a_review_with_too_many_boxes_is_refused_413_and_writes_nothing(app):
    # Before issue 21 a review with 200,000 boxes (7.4 MB) was accepted and written as a 28.6 MB XML.
    base, tmp = app
    sid = _fresh(base, TAKEN)
    boxes = [{"box": [1, 2, 30, 40], "class": "circle"}] * 200_000
    raw = json.dumps({"boxes": boxes}, separators=(",", ":")).encode()       # 7.2 MB, within the byte limit
    status, answer = call(base, f"/api/samples/{sid}/labels", raw=raw)
    assert status == 413 and "at most" in answer["error"], answer
    status, answer = call(base, f"/api/samples/{sid}/labels", {"boxes": boxes[:1001]})   # labels.max_boxes
    assert status == 400 and "1001 boxes, at most 1000 (labels.max_boxes)" in answer["error"], answer
    assert not list((tmp / "var" / "inbox").glob(f"{sid}*"))


def _open_review(driver, base):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/review?token={TOKEN}")
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: d.execute_script("return image !== null && image.complete && image.width > 0 && "
                                          "paintData !== null"))
    return wait


def _saved(driver, wait, sid):
    from selenium.webdriver.common.by import By

    wait.until(lambda d: sid in d.find_element(By.ID, "last").text or "not saved" in d.find_element(By.ID, "message").text)
    return driver.find_element(By.ID, "message").text + " | " + driver.find_element(By.ID, "last").text



@NEEDS_DRIVER
def test_draw_a_box_change_its_class_and_save_in_the_browser(app, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, tmp = app
    driver = _driver(tmp_path)
    try:
        wait = _open_review(driver, base)
        sid = driver.execute_script("return sample.id")
        before = _frames(base, "det")
        # "nothing here" first, then draw one box from scratch, as a person would
        driver.execute_script("boxes = []; selected = -1; draw();")
        canvas = driver.find_element(By.ID, "canvas")
        w, h = canvas.size["width"], canvas.size["height"]  # 320 x 240 at scale 1
        ActionChains(driver).move_to_element_with_offset(canvas, -w // 2 + 40, -h // 2 + 30).click_and_hold() \
            .move_by_offset(60, 30).move_by_offset(40, 30).release().perform()
        assert driver.execute_script("return boxes.length") == 1
        Select(driver.find_element(By.ID, "class")).select_by_value("triangle")  # change the drawn box's class
        driver.find_element(By.ID, "save").click()
        message = _saved(driver, wait, sid)
    finally:
        driver.quit()
    assert "not saved" not in message and f"last saved: {sid} (scored)" in message, message
    xml = tmp / "var" / "inbox" / "done" / f"{sid}.xml"
    _, _, objects = parse_voc_xml(xml)
    assert len(objects) == 1 and objects[0][0] == "triangle"
    x0, y0, x1, y1 = objects[0][1]
    assert abs(x0 - 40) <= 3 and abs(y0 - 30) <= 3 and abs(x1 - 140) <= 3 and abs(y1 - 90) <= 3, objects
    assert _frames(base, "det") == before + 1                                        # scored: the rolling counts moved


@NEEDS_DRIVER
def test_paint_the_mask_with_the_brush_and_save(app, tmp_path):
    import cv2
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, tmp = app
    driver = _driver(tmp_path)
    try:
        wait = _open_review(driver, base)
        driver.execute_script("open(1)")                                   # another sample than the box test's
        wait.until(lambda d: d.execute_script("return index === 1 && paintData !== null && image.complete"))
        sid = driver.execute_script("return sample.id")
        before = _frames(base, "seg")
        last = len(driver.execute_script("return paintClasses"))  - 1
        driver.find_element(By.ID, "paint").click()
        Select(driver.find_element(By.ID, "paintClass")).select_by_value(str(last))
        canvas = driver.find_element(By.ID, "canvas")
        w, h = canvas.size["width"], canvas.size["height"]
        ActionChains(driver).move_to_element_with_offset(canvas, -w // 2 + 200, -h // 2 + 150).click_and_hold() \
            .move_by_offset(20, 0).move_by_offset(20, 0).move_by_offset(20, 0).release().perform()
        driver.find_element(By.ID, "save").click()
        message = _saved(driver, wait, sid)
    finally:
        driver.quit()
    assert "not saved" not in message, message
    label = cv2.imread(str(tmp / "var" / "inbox" / "done" / f"{sid}.seg.png"), cv2.IMREAD_UNCHANGED)
    predicted = cv2.imread(str(tmp / "var" / "samples" / f"{sid}.seg.png"), cv2.IMREAD_UNCHANGED)
    assert label.shape == (240, 320) and (label[145:156, 200:261] == last).all()    # the stroke, radius 8
    away = np.ones(label.shape, bool)
    away[130:171, 185:276] = False
    assert (label[away] == predicted[away]).all()                                    # the rest as predicted
    assert _frames(base, "seg") == before + 1


def test_reviewed_samples_export_as_voc_and_coco_that_the_readers_open(app, tmp_path):
    import subprocess
    import sys

    from pycocotools.coco import COCO

    from edge_app.datasets import open_dataset

    base, tmp = app
    sid = _fresh(base, TAKEN)
    assert call(base, f"/api/samples/{sid}/labels", {"boxes": [], "masks": {"seg": "accept"}})[0] == 200  # nothing here
    samples = tmp / "var" / "samples"
    reviews = {p.name.split(".")[0]: json.loads(p.read_text()) for p in samples.glob("*.review.json")}
    assert len(reviews) >= 3
    run = lambda *a: subprocess.run([sys.executable, "-m", "edge_app", "samples", "export", *a, "--samples",  # noqa: E731
                                     str(samples)], capture_output=True, text=True, cwd=ROOT)
    voc = run("--format", "voc", str(tmp_path / "voc"))
    assert voc.returncode == 0, voc.stderr
    ds = open_dataset(tmp_path / "voc")
    by_stem = {s.image_path.stem: s for s in ds.samples}
    assert set(by_stem) == set(reviews)
    for stem, review in reviews.items():
        got = sorted((ds.classes[c], [round(v, 1) for v in b]) for b, c in zip(by_stem[stem].truth.boxes.tolist(),
                                                                              by_stem[stem].truth.classes.tolist()))
        assert got == sorted((b["class"], [round(v, 1) for v in b["box"]]) for b in review["boxes"])
    masks = open_dataset(tmp_path / "voc", task="segmentation")
    assert sid in {s.image_path.stem for s in masks.samples}                # the accepted mask came along
    coco = run("--format", "coco", str(tmp_path / "coco"))
    assert coco.returncode == 0, coco.stderr
    ref = COCO(str(tmp_path / "coco" / "annotations.json"))                   # pycocotools reads it
    assert len(ref.getImgIds()) == len(reviews)
    assert len(ref.getAnnIds()) == sum(len(r["boxes"]) for r in reviews.values())
    again = run("--format", "voc", str(tmp_path / "voc"))                     # an existing folder is never touched
    assert again.returncode == 2 and "exists" in again.stderr


@NEEDS_DRIVER
def test_the_live_page_links_to_the_review_queue(app, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = app
    driver = _driver(tmp_path)
    try:
        driver.get(f"{base}/?token={TOKEN}")
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "review").is_displayed())
        link = driver.find_element(By.ID, "review")
        assert "pending" in link.text and link.get_attribute("href") == f"{base}/review"
        # the token moved into an HttpOnly cookie: not in the address, not readable by any script
        assert TOKEN not in driver.current_url and TOKEN not in driver.execute_script("return document.cookie")
        link.click()                                   # and the cookie opens the review page
        WebDriverWait(driver, 20).until(lambda d: d.execute_script("return typeof image !== 'undefined' && "
                                                                   "image !== null && image.complete"))
    finally:
        driver.quit()
