"""The README's recipes, run as a new user would, and the README's links.

Every ```sh block of README.md preceded by ``<!-- recipe: NAME -->`` is read from the README itself and run,
command by command, in order, through bash, in the root of a fresh copy of this clone (its tracked files
and its untracked, not ignored ones: what ``git clone`` plus your edits gives) with only what the clone
ships (the demo clips and models) and the ``.venv`` that ``make run`` / ``make test`` made. Each recipe then
checks what the README says you get.

Substitutions, each because a test cannot do what the README asks of a person or of a machine:

- ports 8080, 8090 and 1883 in a command become free ports (other tests and developers share the machine);
  ``edge-app fleet`` gets ``--http 127.0.0.1:PORT`` for its default 8090;
- ``edge-app run`` and ``edge-app fleet`` run in the background (a person leaves them running in a terminal,
  or with the README's ``&``) with ``--max-seconds`` added, so a failing test leaves nothing behind; they are
  waited for until they serve; ``$!`` is the last one's pid, as in the shell;
- HOME and XDG_STATE_HOME point into the test's folder and PYTHONPATH at the copy (so the copy's code runs,
  wherever the venv's editable install points);
- c (service): the camera ``rtsp://192.168.1.20:554/stream1`` is the tests' RTSP server
  (tests/rtsp_test_server.py, a videotestsrc ball) on a free port; ``sudo ... service install`` runs without
  sudo and with ``--root`` into the test's folder (systemd is not PID 1 here, and a test must not touch
  /etc); ``sudo systemctl start edge-app`` becomes the installed unit's ExecStart, with its config and the
  service's /var/lib, /var/cache and /var/log folders read under that root; ``journalctl -u edge-app -f``
  becomes reading that process's log;
- d (labelling): the person at the review page is stood in for by POSTing to the review API that page uses
  (``POST /api/samples/<id>/labels``), doing what the README asks of a person on this clip: a box the
  detector put on a car under another name (``cell phone``, ``toilet``, ``person``) becomes ``car``, the
  ``kite`` on the road marking is deleted; unlike a person it does not draw the cars the detector missed;
- e (fleet): ``sudo apt-get install -y mosquitto`` becomes a Mosquitto started by the test (Debian's, which
  ``make test`` installs) on a free loopback port, anonymous clients let in as Debian's does on loopback.

Everything else runs verbatim. ``make run`` and ``make test`` themselves are what CI runs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from tests.gst_helpers import free_port, require_gst

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RECIPE = re.compile(r"<!-- recipe: ([a-z-]+) -->\s*\n```sh\n(.*?)\n```", re.S)
LONG = re.compile(r"\bedge-app (run|fleet)\b")       # serve until stopped: started in the background
MAX_SECONDS = 240                                     # --max-seconds of what the test starts
README_MAX_LINES = 200                                # "a README that fits on a screen or two"


def recipes() -> dict[str, list[str]]:
    """{name: its commands in order}: the README's marked ```sh blocks (several blocks of one name are one
    shell session), split into commands (backslash continuations and heredocs kept whole)."""
    out: dict[str, list[str]] = {}
    for name, block in RECIPE.findall(README.read_text()):
        out.setdefault(name, []).extend(commands(block))
    return out


def commands(block: str) -> list[str]:
    lines, out, i = block.splitlines(), [], 0
    while i < len(lines):
        cmd, i = lines[i], i + 1
        if not cmd.strip() or cmd.lstrip().startswith("#"):
            continue
        while cmd.endswith("\\") and i < len(lines):
            cmd, i = cmd + "\n" + lines[i], i + 1
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", cmd)
        if heredoc:
            while i < len(lines) and not cmd.endswith("\n" + heredoc.group(1)):
                cmd, i = cmd + "\n" + lines[i], i + 1
            assert cmd.endswith("\n" + heredoc.group(1)), f"README: heredoc {heredoc.group(1)} not closed in {block!r}"
        out.append(cmd)
    return out


def fresh_clone(dest: Path) -> Path:
    """This clone's files as a fresh clone would hold them (plus edits not committed yet), and make's .venv."""
    listed = subprocess.run(["git", "-c", "safe.directory=*", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to((ROOT / ".venv").resolve())
    return dest


def get_json(url: str, token: str | None = None, timeout: float = 3) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_for(what: str, probe: Callable[[], Any], seconds: float, procs: Sequence["Background"] = ()) -> Any:
    """probe() until it returns something truthy (exceptions count as not yet); fails naming ``what`` with
    the tail of every background process's log."""
    end, last = time.monotonic() + seconds, None
    while time.monotonic() < end:
        try:
            value = probe()
            if value:
                return value
            last = value
        except (OSError, ValueError, KeyError, TypeError) as exc:
            last = exc
        for p in procs:
            if p.proc.poll() is not None:
                pytest.fail(f"{p.cmd!r} exited ({p.proc.returncode}) while waiting for {what}:\n{p.tail()}")
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {seconds:.0f} s (last: {last!r})\n" + "\n".join(p.tail() for p in procs))


class Background:
    def __init__(self, cmd: str, proc: subprocess.Popen, log: Path) -> None:
        self.cmd, self.proc, self.log = cmd, proc, log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, n: int = 40) -> str:
        return f"--- {self.cmd}\n" + "\n".join(self.text().splitlines()[-n:])


class Shell:
    """One recipe's shell session in a fresh copy of the clone."""

    def __init__(self, tmp: Path) -> None:
        require_gst()  # every recipe decodes a clip or an RTSP stream through GStreamer
        if not (ROOT / ".venv" / "bin" / "edge-app").is_file():
            pytest.skip("the recipes use .venv/bin/edge-app, which make run / make test create")
        if shutil.which("git") is None or not (ROOT / ".git").exists():
            pytest.skip("needs git and a git checkout to copy the clone's files")
        self.tmp = tmp
        self.clone = fresh_clone(tmp / "clone")
        home = tmp / "home"
        home.mkdir()
        self.env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / ".local" / "state"),
                    "PYTHONPATH": str(self.clone)}
        self.env.pop("EDGE_APP_HTTP_TOKEN", None)
        self.ports = {p: str(free_port()) for p in ("8080", "8090", "1883")}
        self.background: list[Background] = []
        self.helpers: list[subprocess.Popen] = []

    def sub(self, cmd: str) -> str:
        cmd = re.sub(r"\b(8080|8090|1883)\b", lambda m: self.ports[m.group(1)], cmd)
        if self.background:
            cmd = cmd.replace("$!", str(self.background[-1].proc.pid))
        return cmd

    def run(self, cmd: str, timeout: float = 300) -> subprocess.CompletedProcess:
        cmd = self.sub(cmd)
        r = subprocess.run(["bash", "-c", cmd], cwd=self.clone, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        assert r.returncode == 0, \
            f"README command failed ({r.returncode}): {cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r

    def start(self, cmd: str, extra: str = "") -> Background:
        line = self.sub(cmd).rstrip()
        line = line[:-1].rstrip() if line.endswith("&") else line
        line = f"{line}{extra} --max-seconds {MAX_SECONDS}"
        log = self.tmp / f"bg{len(self.background)}.log"
        with log.open("w") as f:
            proc = subprocess.Popen(["bash", "-c", "exec " + line], cwd=self.clone, env=self.env, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        bg = Background(line, proc, log)
        self.background.append(bg)
        return bg

    def close(self) -> None:
        for p in [b.proc for b in self.background] + self.helpers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [b.proc for b in self.background] + self.helpers:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


@pytest.fixture
def shell(tmp_path):
    sh = Shell(tmp_path)
    yield sh
    sh.close()


def steps(name: str, count: int) -> list[str]:
    found = recipes().get(name)
    assert found, f"README: no ```sh block marked <!-- recipe: {name} -->"
    assert len(found) == count, f"README recipe {name}: {len(found)} commands, this test plays {count}: {found}"
    return found


def status_of(sh: Shell, bg: Background, token: str | None = None) -> dict[str, Any]:
    port = re.search(r"http://127\.0\.0\.1:(\d+)", bg.cmd)
    assert port, f"no http://127.0.0.1:PORT output in {bg.cmd!r}"
    return get_json(f"http://127.0.0.1:{port.group(1)}/status", token)


def last_json(text: str) -> dict[str, Any]:
    line = next(line for line in reversed(text.splitlines()) if line.startswith("{"))
    return json.loads(line)


@pytest.mark.slow
def test_recipe_a_counts_the_person_crossing_the_line(shell):
    live, offline = steps("line", 2)
    assert LONG.search(live) and "--line door:0.7,0,0.7,1" in live
    app = shell.start(live)
    # README: about 14 s in, the person walks past the line: door: in 1 (on /status too)
    def crossed() -> dict[str, Any] | None:
        door = status_of(shell, app)["analytics"]["lines"]["door"]
        return door if door["total_in"] + door["total_out"] >= 1 else None

    door = wait_for("the line's count on /status", crossed, 75, [app])  # the clip loops: a second chance at 44 s
    assert door["in"] == {"person": 1} and door["total_out"] == 0, door
    status = status_of(shell, app)
    assert status["source"]["state"] == "playing" and list(status["models"]) == ["coco"]
    r = shell.run(offline)
    counts = last_json(r.stdout)
    assert counts["frames"] == 300 and counts["dropped"] == 0 and counts["size"] == [768, 432], counts
    assert counts["lines"]["door"]["in"] == {"person": 1}, counts          # what the README says it prints
    assert len((shell.clone / "tracks.txt").read_text().splitlines()) > 100


@pytest.mark.slow
def test_recipe_b_the_parking_lot_and_the_detectors_weak_spot(shell):
    live, offline = steps("parking", 2)
    app = shell.start(live)
    def zone() -> dict[str, Any] | None:
        status = status_of(shell, app)
        return status["analytics"]["zones"]["lot"] if status["source"]["frames"] >= 25 else None

    lot = wait_for("the zone on /status after some frames", zone, 60, [app])
    assert {"occupancy", "entries", "exits", "dwell_mean_s"} <= set(lot), lot
    assert status_of(shell, app)["source"]["uri"].endswith("/edge_app/demo/cars.mp4")
    r = shell.run(offline)
    counts = last_json(r.stdout)
    assert counts["frames"] == 250 and counts["dropped"] == 0, counts
    assert counts["zones"]["lot"]["entries"].get("cell phone", 0) >= 1, counts  # cars seen from above: "cell phone"


@pytest.mark.slow
def test_recipe_c_an_rtsp_camera_as_a_service(shell):
    from tests.gst_helpers import start_rtsp_server

    write, check, install, start, journal = steps("service", 5)
    camera_port = free_port()
    shell.helpers.append(start_rtsp_server(camera_port))
    camera = f"rtsp://127.0.0.1:{camera_port}/test"
    assert "rtsp://192.168.1.20:554/stream1" in write
    shell.run(write.replace("rtsp://192.168.1.20:554/stream1", camera))
    r = shell.run(check)
    assert "my.toml: OK" in r.stdout, r.stdout
    root = shell.tmp / "root"
    assert install.startswith("sudo .venv/bin/edge-app service install")
    r = shell.run(install[len("sudo "):] + f" --root {root}")
    installed, unit = root / "etc/edge-app/config.toml", root / "etc/systemd/system/edge-app.service"
    assert installed.is_file() and unit.is_file(), r.stdout
    text = installed.read_text()
    assert str(shell.clone / "edge_app/demo/coco.onnx") in text and 'state_dir = "/var/lib/edge-app"' in text
    # systemctl start: the unit's own command, its config and the service's folders under the root
    assert start == "sudo systemctl start edge-app" and journal.startswith("journalctl -u edge-app")
    for folder in ("/var/lib/edge-app", "/var/cache/edge-app", "/var/log/edge-app"):
        text = text.replace(f'"{folder}', f'"{root}{folder}')
    installed.write_text(text)
    exec_start = re.search(r"^ExecStart=(.+)$", unit.read_text(), re.M).group(1)
    assert exec_start.endswith("run --config /etc/edge-app/config.toml"), exec_start
    service = shell.start(exec_start.replace("/etc/edge-app/config.toml", str(installed)))
    token = re.search(r'token = "([^"]+)"', text).group(1)
    port = shell.ports["8080"]
    def playing() -> dict[str, Any] | None:
        status = get_json(f"http://127.0.0.1:{port}/status", token)
        return status if status["source"]["state"] == "playing" and status["source"]["frames"] > 5 else None

    status = wait_for("the service's camera playing", playing, 60, [service])
    assert status["source"]["uri"] == camera and "door" in status["analytics"]["lines"], status["source"]
    with pytest.raises(urllib.error.HTTPError) as refused:                 # beyond loopback: the token is needed
        get_json(f"http://127.0.0.1:{port}/status")
    assert refused.value.code == 401
    log = service.text()                                                    # what journalctl would show
    assert '"event": "ready"' in log and str(installed) in service.cmd, log[-2000:]


CAR_NAMES = {"cell phone", "toilet", "person", "car", "truck", "bus"}  # boxes this detector puts on cars here


def label_like_a_person(base: str) -> int:
    """The review page's person, through its API: boxes on cars become `car`, the rest (the `kite` on the
    road marking) is deleted; one label per car (a second box on the same car is dropped)."""
    def iou(a: list[float], b: list[float]) -> float:
        w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
        inter = max(0.0, w) * max(0.0, h)
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    cars = 0
    for s in get_json(f"{base}/api/samples"):
        sample = get_json(f"{base}/api/samples/{s['id']}")
        boxes: list[dict[str, Any]] = []
        for b in sample["models"]["coco"]["boxes"]:
            if b["class"] in CAR_NAMES and all(iou(b["box"], o["box"]) < 0.5 for o in boxes):
                boxes.append({"box": b["box"], "class": "car"})
        req = urllib.request.Request(f"{base}/api/samples/{s['id']}/labels", json.dumps({"boxes": boxes}).encode(),
                                     {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        cars += len(boxes)
    return cars


@pytest.mark.slow
def test_recipe_d_label_and_recalibrate(shell):
    run, export, calibrate, hup = steps("label", 4)
    assert run.rstrip().endswith("&") and hup == "kill -HUP $!"
    app = shell.start(run)
    base = f"http://127.0.0.1:{shell.ports['8080']}"

    def a_car_sampled() -> bool:
        for s in get_json(f"{base}/api/samples"):
            boxes = get_json(f"{base}/api/samples/{s['id']}")["models"]["coco"]["boxes"]
            if any(b["class"] in CAR_NAMES for b in boxes):
                return True
        return False

    wait_for("a sampled frame with a car in it", a_car_sampled, 90, [app])
    assert label_like_a_person(base) >= 1
    r = shell.run(export)
    images = list((shell.clone / "var/live-labels/images").glob("*.jpg"))
    assert images and "boxes" in r.stdout, r.stdout
    thresholds = shell.clone / "edge_app/demo/coco.thresholds.json"
    shipped = json.loads(thresholds.read_text())
    shell.run(calibrate)
    chosen = json.loads(thresholds.read_text())
    # chosen on the exported frames: a threshold for `car`, the class the labels name and the model shows
    assert "car" in chosen["score_thresholds"] and chosen["score_thresholds"] != shipped["score_thresholds"], chosen
    assert chosen["expected"]["car"]["labels"] >= 1 and chosen["expected_with"]["images"] == len(images), chosen
    # the class these labels do not name keeps its shipped threshold (the README says so)
    assert chosen["score_thresholds"]["person"] == shipped["score_thresholds"]["person"], chosen
    assert "person" in chosen["kept"]["classes"], chosen
    assert "reloaded" not in app.text()
    shell.run(hup)
    # the running app takes them (its log: the model's thresholds from the file, now `car`'s) and goes on
    wait_for("the app's reload after SIGHUP", lambda: '"event": "reloaded"' in app.text(), 30, [app])
    line = next((l for l in app.text().splitlines() if "thresholds from " + str(thresholds) in l and "'car': " in l),
                None)
    assert line is not None, app.tail()
    frames = status_of(shell, app)["source"]["frames"]
    wait_for("frames after the reload", lambda: status_of(shell, app)["source"]["frames"] > frames + 5, 20, [app])


@pytest.mark.slow
def test_recipe_e_a_fleet(shell, tmp_path):
    from tests.events.broker import Broker, require_mosquitto

    require_mosquitto()
    apt, device, fleet = steps("fleet", 3)
    assert apt.startswith("sudo apt-get install -y mosquitto")
    broker = Broker(tmp_path / "broker", anonymous=True)                  # instead of apt's service on 1883
    shell.ports["1883"] = str(broker.port)
    try:
        dev = shell.start(device)
        wait_for("the device serving", lambda: status_of(shell, dev), 60, [dev])
        assert LONG.search(fleet) and "--http" not in fleet
        page = shell.ports["8090"]
        view = shell.start(fleet, extra=f" --http 127.0.0.1:{page}")
        seen = wait_for("the device on the fleet page", lambda: [d for d in get_json(
            f"http://127.0.0.1:{page}/api/fleet")["devices"] if d["online"] and d.get("status")], 60, [dev, view])
        assert len(seen) == 1 and seen[0]["status"]["source"]["state"] == "playing", seen
        with urllib.request.urlopen(f"http://127.0.0.1:{page}/", timeout=5) as r:
            assert b"edge-vision fleet" in r.read()
    finally:
        shell.close()
        broker.stop()


# -- the README itself ---------------------------------------------------------------------------------

def test_the_readme_fits_on_a_screen_or_two():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; details belong in docs/"
    assert set(recipes()) == {"line", "parking", "service", "label", "fleet"}


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # '#' lines in code are no headings
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_every_link_of_the_readme_and_docs_resolves():
    pages = [README] + sorted((ROOT / "docs").glob("*.md"))
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)\)", README.read_text()))
    on_disk = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert on_disk <= linked, f"docs files the README does not link: {sorted(on_disk - linked)}"


def test_make_bench_writes_its_table_into_docs_benchmarks(tmp_path):
    from tests.benchmarks.run_all import MARKERS, TABLE_PAGE, write_table

    assert TABLE_PAGE == ROOT / "docs" / "benchmarks.md"
    text = TABLE_PAGE.read_text()
    assert all(m in text for m in MARKERS) and "bench:start" not in README.read_text()
    page = tmp_path / "benchmarks.md"
    page.write_text(text)
    assert write_table(page, "| new | table |")
    head, rest = text.split(MARKERS[0], 1)
    new = page.read_text()
    assert new.startswith(head) and new.endswith(rest.split(MARKERS[1], 1)[1])
    assert f"{MARKERS[0]}\n| new | table |\n{MARKERS[1]}" in new
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    assert not write_table(bare, "x") and bare.read_text() == "no markers\n"
