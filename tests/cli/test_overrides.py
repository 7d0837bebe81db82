"""`edge-app run INPUT OUTPUT --model ARTIFACT`: the command line overrides the config with the config's
own validation (every problem named at once, exit 2), and the console is text on a terminal, JSON lines
in a pipe."""
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from edge_app.cli.overrides import input_uri, run_config
from edge_app.config import ConfigError
from tests.gst_helpers import free_port, require_gst
from tests.test_app import http_get, write_config


@pytest.mark.parametrize("value, expected", [
    ("csi://0", "csi://0"),
    ("rtsp://10.0.0.5:554/live", "rtsp://10.0.0.5:554/live"),
    ("/dev/video0", "v4l2:///dev/video0"),
    ("clip.mp4", "file://{cwd}/clip.mp4"),
    ("file://rel/clip.mp4", "file://{cwd}/rel/clip.mp4"),   # relative to where it was typed
    ("replay:///abs/set", "replay:///abs/set"),
])
def test_input_forms(tmp_path, value, expected):
    assert input_uri(value, tmp_path) == expected.format(cwd=tmp_path)


def test_outputs_replace_the_configs_and_keep_their_settings(tmp_path):
    cfg_file = write_config(tmp_path, extra='[output.rtsp]\nenabled = true\nport = 9554\nbitrate_kbps = 800\n')
    cfg = run_config(cfg_file, "test://", ["rtsp://127.0.0.1:8600/cam", f"file://{tmp_path}/out.mp4"])
    assert cfg.source.uri == "test://"
    assert (cfg.output.rtsp.port, cfg.output.rtsp.path, cfg.output.rtsp.bitrate_kbps) == (8600, "/cam", 800)
    assert cfg.output.record.enabled and cfg.output.record.file == "out.mp4"
    assert cfg.output.record.directory == str(tmp_path)
    assert not cfg.output.http.enabled  # not named on the command line: off for this run
    assert cfg.models["segmenter"].kind == "classical"  # the config's models stay without --model


def test_model_from_the_artifact_alone(tmp_path, demo_detector):
    cfg = run_config(tmp_path / "absent.toml", "synthetic://", [], [str(demo_detector)], required=False)
    m = cfg.models["detector"]
    assert m.kind == "detector" and m.thresholds_file.endswith("detector.thresholds.json")


@pytest.mark.parametrize("args, message", [
    (("ftp://cam", [], []), "INPUT 'ftp://cam': expected a source URI"),
    (("test://", ["gopher://x"], []), "OUTPUT 'gopher://x': expected http://HOST:PORT"),
    (("test://", ["mqtt://broker:port"], []), "OUTPUT 'mqtt://broker:port'"),
    (("test://", ["http://@:8080"], []), "output.http.host = '0.0.0.0': binding beyond loopback requires"),
    (("test://", ["rtsp://@:8554/live"], []), "output.rtsp.host = '0.0.0.0'"),
    (("test://", ["file:///tmp/out.avi"], []), "expected a video file name ending in .mp4"),
    (("test://", ["http://127.0.0.1:99999"], []), "OUTPUT 'http://127.0.0.1:99999': Port out of range"),
    (("test://", [], ["nope.onnx"]), "--model 'nope.onnx'"),
])
def test_bad_arguments_are_named(tmp_path, args, message):
    input, outputs, models = args
    with pytest.raises(ConfigError) as info:
        run_config(tmp_path / "absent.toml", input, outputs, models, cwd=tmp_path, required=False)
    assert any(message in p for p in info.value.problems), info.value.problems


def test_all_interfaces_with_a_token_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_APP_HTTP_TOKEN", "s3cret")
    cfg = run_config(tmp_path / "absent.toml", "test://", ["http://@:8088"], [], required=False)
    assert (cfg.output.http.host, cfg.output.http.port, cfg.output.http.token) == ("0.0.0.0", 8088, "s3cret")


@pytest.mark.slow
def test_run_with_input_output_and_model_overrides_the_config(tmp_path, demo_detector):
    require_gst()
    port = free_port()
    cfg = write_config(tmp_path)  # synthetic source, a classical segmenter, http on another port
    proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "test://", f"http://127.0.0.1:{port}",
                             "--model", str(demo_detector), "--config", str(cfg), "--max-seconds", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status, end = None, time.monotonic() + 20
        while time.monotonic() < end:
            try:
                code, body = http_get(f"http://127.0.0.1:{port}/status", timeout=1)
                status = json.loads(body)
                if status["counters"].get("frames_out", 0) > 3:
                    break
            except OSError:
                pass
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert status is not None, "nothing served on the port given on the command line"
    assert status["source"]["uri"] == "test://" and status["source"]["state"] == "playing"
    assert list(status["models"]) == ["detector"]  # --model replaced the config's models


def test_run_with_a_bad_uri_exits_2_naming_it(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edge_app", "run", "ftp://cam", "--config", str(write_config(tmp_path))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "INPUT 'ftp://cam'" in r.stderr


def _run_on_a_terminal(cmd: list[str], seconds: float) -> str:
    """Run with stdout on a pseudo-terminal (isatty() is true there) and collect what it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, close_fds=True)
    os.close(slave)
    out, end = b"", time.monotonic() + seconds
    while time.monotonic() < end and proc.poll() is None:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                out += os.read(master, 65536)
            except OSError:
                break
    proc.terminate()
    proc.wait(timeout=10)
    os.close(master)
    return out.decode(errors="replace")


@pytest.mark.slow
def test_console_is_text_on_a_terminal_and_json_in_a_pipe(tmp_path):
    cfg = write_config(tmp_path)
    cmd = [sys.executable, "-m", "edge_app", "run", "--config", str(cfg), "--max-seconds", "7"]
    tty = _run_on_a_terminal(cmd, 20)
    lines = [l for l in tty.splitlines() if l.strip()]
    progress = [l for l in lines if " fps | " in l]
    assert len(progress) >= 1, tty[-2000:]
    assert not any(l.lstrip().startswith("{") for l in lines), "JSON on a terminal"
    assert any("segmenter mIoU" in l for l in progress)  # rolling numbers in the line
    piped = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    events = [json.loads(l) for l in piped.splitlines() if l.strip()]
    assert any(e.get("event") == "metrics" for e in events)
    assert not any(e.get("event") == "progress" for e in events)  # the terminal line stays on terminals
    log = (tmp_path / "log" / "edge.jsonl").read_text().splitlines()
    assert log and all(json.loads(l) for l in log) and not any('"progress"' in l for l in log)


def test_state_goes_to_the_state_dir_never_the_current_folder(tmp_path, monkeypatch):
    # issue 24: a config-less run wrote var/ into whatever folder it was started from
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    work = tmp_path / "somewhere"
    work.mkdir()
    cfg = run_config(work / "config.toml", "test://", required=False, cwd=work)
    assert cfg.state(cfg.labels.samples_dir) == tmp_path / "xdg" / "edge-app" / "samples"
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "lib"))           # under systemd
    cfg = run_config(work / "config.toml", "test://", required=False, cwd=work)
    assert cfg.state(cfg.events.state_dir) == tmp_path / "lib" / "events"
    cfg = run_config(work / "config.toml", "test://", required=False, cwd=work, state_dir="st")   # --state-dir
    assert cfg.state(cfg.logging.file) == work / "st" / "log" / "edge-app.jsonl"
    cfg_file = write_config(tmp_path)                                        # a config: var/ next to it
    cfg = run_config(cfg_file, cwd=work)
    assert cfg.state(cfg.labels.inbox) == tmp_path / "var" / "inbox"


def test_model_drops_the_lines_and_zones_of_the_configs_other_models(tmp_path, capsys):
    # issue 24: `--model person.onnx` from the repository root failed: config.toml's line and zone count
    # tracks, and the model given had no tracker
    from tests.conftest import ROOT

    person = str(ROOT / "edge_app" / "demo" / "person.onnx")
    cfg = run_config(ROOT / "config.toml", "test://", models=[person], cwd=ROOT)
    assert list(cfg.models) == ["person"] and cfg.models["person"].tracker.enabled   # counting goes on
    assert [l.name for l in cfg.analytics.lines] == ["middle"]                      # "any tracked detector"
    config = tmp_path / "c.toml"
    config.write_text('[models.det]\nkind = "classical"\n[[analytics.lines]]\nname = "door"\npoints = [[10, 10], '
                      '[10, 200]]\nmodel = "det"\n[[analytics.zones]]\nname = "all"\npoints = [[0, 0], [50, 0], '
                      '[50, 50]]\n')
    cfg = run_config(config, "test://", models=[person], cwd=tmp_path)
    assert not cfg.analytics.lines and [z.name for z in cfg.analytics.zones] == ["all"]
    assert "not counted in this run (they name another model): analytics.lines.door" in capsys.readouterr().err


def test_lines_and_zones_on_the_command_line(tmp_path):
    # issue 24: `edge-app run clip.mp4 URL --line door:0.5,0,0.5,1` counts at once (no config file to write)
    from tests.conftest import ROOT

    clip = str(ROOT / "edge_app" / "demo" / "people.mp4")
    cfg = run_config(tmp_path / "none.toml", clip, required=False, cwd=tmp_path,
                     lines=["door:0.7,0,0.7,1"], zones=["hall:300,60,560,60,560,432,300,432"])
    line, zone = cfg.analytics.lines[0], cfg.analytics.zones[0]
    assert (line.name, line.units, line.points) == ("door", "normalized", ((0.7, 0.0), (0.7, 1.0)))
    assert zone.units == "pixels" and len(zone.points) == 4
    assert all(m.tracker.enabled for m in cfg.models.values() if m.kind == "detector")


@pytest.mark.parametrize("lines, zones, message", [
    (["door:0.5,0"], [], "--line door"),                                   # one point
    (["door:10,10,900,10"], [], "outside the 768x432 frame"),             # off the clip's own frame
    ([], ["hall:0,0,100,100"], "--zone hall"),                             # fewer than 3 points
    (["door 0.5,0,0.5,1"], [], "expected NAME:x1,y1,x2,y2"),
    (["a:0.1,0,0.1,1", "a:0.2,0,0.2,1"], [], "another"),                  # a name used twice
])
def test_bad_lines_and_zones_on_the_command_line_are_named(tmp_path, lines, zones, message):
    from tests.conftest import ROOT

    with pytest.raises(ConfigError) as info:
        run_config(tmp_path / "none.toml", str(ROOT / "edge_app" / "demo" / "people.mp4"), required=False,
                   cwd=tmp_path, lines=lines, zones=zones)
    assert any(message in p for p in info.value.problems), info.value.problems


def test_an_mqtt_output_sends_the_events_to_a_broker(tmp_path):
    cfg = run_config(tmp_path / "none.toml", "test://", ["http://127.0.0.1:8080", "mqtt://edge:pw@10.0.0.5:1884/shop"],
                     required=False, cwd=tmp_path)
    m = cfg.output.mqtt
    assert m.enabled and m.url == "mqtt://edge:pw@10.0.0.5:1884" and m.topic_prefix == "shop"
    assert cfg.output.http.enabled
