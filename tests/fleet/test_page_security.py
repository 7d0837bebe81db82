"""The fleet page against hostile devices, in a real browser (Debian's chromium): HTML and script in every
field the page shows are shown as text and never run; the token opens the page once and then lives in an
HttpOnly cookie, out of the address and out of reach of any script; every page carries a CSP.

Before issue 21 the status below ran script in the page (``total_in`` was inserted as HTML) and the
page's script read ``?token=`` from its own address."""
import json
import time
import urllib.request

import pytest

from edge_app.events.schema import make_event
from tests.browser import NEEDS_DRIVER
from tests.browser import driver as make_driver
from tests.events.broker import PASSWORD, USER, Broker, require_mosquitto

pytestmark = pytest.mark.slow
TOKEN = "fleet-page-s3cret"
EVIL = '<img src=x onerror="window.__xss=(window.__xss||0)+1"><b id=pwn>&</b>'


def _wait(pred, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture()
def fleet(tmp_path):
    require_mosquitto()
    from edge_app.fleet.collector import Broker as Settings
    from edge_app.fleet.collector import FleetCollector
    from edge_app.fleet.server import FleetServer
    from edge_app.fleet.store import FleetStore

    broker = Broker(tmp_path / "broker")
    store = FleetStore(tmp_path / "fleet.sqlite")
    collector = FleetCollector(Settings(broker.url, client_id="fleet-page"), store, group="")
    collector.start()
    server = FleetServer(store, collector, port=0, token=TOKEN)
    assert _wait(lambda: collector.state == "connected", 10)
    time.sleep(0.3)
    yield broker, store, collector, server
    server.close()
    collector.close()
    store.close()
    broker.stop()


def _publish_hostile(broker) -> int:
    """A device whose every free-text field is HTML: names of lines, zones, models, streams; health,
    source state; event details (line, zone, class, model, uri, reason, message). Returns events sent."""
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="evil-device")
    pub.username_pw_set(USER, PASSWORD)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    status = {"device": "evil", "fps": 9.5, "health": EVIL[:32], "source": {"uri": EVIL, "state": EVIL, "reconnects": 2},
              "rolling": {EVIL: {"precision": 0.5, "recall": 0.4}},
              "counts": {"lines": {EVIL: {"total_in": 3, "total_out": 1}}, "zones": {EVIL: {"total": 2}}},
              "streams": {"main": {"fps": 9.5, "counts": {"lines": {EVIL: {"total_in": 3, "total_out": 1}}}}}}
    events = [make_event("line_crossed", 1, "evil", "main", line=EVIL, direction="in", model=EVIL, track_id=1,
                         **{"class": EVIL}),
              make_event("zone_entered", 2, "evil", "main", zone=EVIL, model=EVIL, track_id=2, **{"class": EVIL}),
              make_event("source_lost", 3, "evil", "main", uri=EVIL, reason=EVIL),
              make_event("drift", 4, "evil", "main", model=EVIL, message=EVIL)]
    try:
        pub.publish("edge/evil/availability", "online", qos=1, retain=True).wait_for_publish(5)
        pub.publish("edge/evil/status", json.dumps(status), qos=1, retain=True).wait_for_publish(5)
        for e in events:
            pub.publish("edge/evil/events", json.dumps(e), qos=1).wait_for_publish(5)
    finally:
        pub.loop_stop()
        pub.disconnect()
    return len(events)


def test_every_page_response_carries_its_security_headers(fleet):
    _, _, _, server = fleet
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        csp, frame, sniff = (r.headers.get(k) for k in ("Content-Security-Policy", "X-Frame-Options",
                                                         "X-Content-Type-Options"))
    assert "script-src 'sha256-" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and frame == "DENY" and sniff == "nosniff"


@NEEDS_DRIVER
def test_hostile_strings_are_text_and_the_token_is_a_cookie_no_script_can_read(fleet, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    broker, store, _, server = fleet
    sent = _publish_hostile(broker)
    assert _wait(lambda: len(store.recent_events()) == sent and store.devices() and store.devices()[0]["status"], 10)
    base = f"http://127.0.0.1:{server.port}"
    driver = make_driver(tmp_path)
    try:
        driver.get(f"{base}/?token={TOKEN}")
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: "1 of 1 devices online" in d.find_element(By.ID, "summary").text)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#events tr")) == sent + 1)
        time.sleep(1.5)  # two more refreshes of the page: any injected handler would have fired by now
        xss = driver.execute_script("return window.__xss === undefined ? 0 : window.__xss")
        injected = driver.execute_script("return document.querySelectorAll('#pwn, img[src=\"x\"]').length")
        text = driver.find_element(By.TAG_NAME, "main").text
        address, cookies_seen = driver.current_url, driver.execute_script("return document.cookie")
        jar = {c["name"]: c for c in driver.get_cookies()}
        # the cookie opens the API and snapshots too, without the token in any address
        driver.get(f"{base}/api/fleet")
        api = json.loads(driver.find_element(By.TAG_NAME, "body").text)
    finally:
        driver.quit()
    assert xss == 0 and injected == 0
    assert text.count(EVIL) >= 8, text[:2000]          # shown, as text: lines, zones, models, details
    assert TOKEN not in address and address.rstrip("/") == base
    assert TOKEN not in cookies_seen                     # HttpOnly: no script reads it
    cookie = jar[f"edge_token_{server.port}"]
    assert cookie["httpOnly"] and cookie.get("sameSite") == "Strict" and cookie["value"] == TOKEN
    assert api["online"] == 1


def test_the_cookie_alone_does_not_write(fleet):
    """A cross-site form can make the browser send the cookie, never a custom header: writes need the
    header (the fleet's routes are reads, so the rule is checked on the live server's write rule)."""
    from edge_app.serve.access import authorised, cookie_name

    name = cookie_name(8080)
    cookie = {"Cookie": f"{name}={TOKEN}"}
    assert authorised(cookie, {}, TOKEN, cookie=name)                                   # a read
    assert not authorised(cookie, {}, TOKEN, write=True, cookie=name)                   # a forged write
    assert authorised({**cookie, "X-Requested-With": "edge-app"}, {}, TOKEN, write=True, cookie=name)
    assert not authorised({}, {"token": [TOKEN]}, TOKEN, write=True, cookie=name)      # never the URL
    assert not authorised({"Cookie": f"{name}=wrong", "X-Requested-With": "x"}, {}, TOKEN, write=True, cookie=name)
