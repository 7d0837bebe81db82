"""The shipped unit: verify with no output at all, security exposure <= 4.0, install into a temp root."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_app.cli.service import device_config, render_unit

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (apt systemd)")


def _unit(tmp_path: Path) -> Path:
    unit = tmp_path / "edge-app.service"
    unit.write_text(render_unit(Path(sys.prefix), tmp_path / "config.toml", "root"))
    return unit


def test_verify_prints_nothing(tmp_path):
    r = subprocess.run(["systemd-analyze", "verify", str(_unit(tmp_path))], capture_output=True, text=True,
                       timeout=60)
    # verify exits 0 even on typos like Restart=on-faliure, printing only a warning: any output fails
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_verify_would_catch_a_typo(tmp_path):
    unit = _unit(tmp_path)
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=on-faliure"))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.stdout + r.stderr != ""


def test_security_exposure_is_ok(tmp_path):
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(_unit(tmp_path))],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 4.0


def test_unit_has_the_promised_settings(tmp_path):
    text = _unit(tmp_path).read_text()
    for line in ("Type=notify", "WatchdogSec=10", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                 "SupplementaryGroups=video", "StateDirectory=edge-app", "CacheDirectory=edge-app",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", f"{sys.prefix}/bin/edge-app run"):
        assert line in text, line
    assert "@" not in text.split("[Service]")[1].split("SystemCallFilter")[0]  # every placeholder filled


def test_install_dry_run_and_into_temp_root(tmp_path):
    dry = subprocess.run([sys.executable, "-m", "edge_app", "service", "install", "--dry-run",
                          "--source-config", str(ROOT / "config.toml")], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "write /etc/systemd/system/edge-app.service" in dry.stdout
    assert "run systemctl daemon-reload" in dry.stdout and "run systemctl enable edge-app.service" in dry.stdout
    root = tmp_path / "root"
    real = subprocess.run([sys.executable, "-m", "edge_app", "service", "install", "--root", str(root),
                           "--source-config", str(ROOT / "config.toml")], capture_output=True, text=True, timeout=60)
    assert real.returncode == 0, real.stderr
    unit = root / "etc/systemd/system/edge-app.service"
    config = root / "etc/edge-app/config.toml"
    assert unit.is_file() and config.is_file()
    # the installed config is valid once its model paths exist, and writes only under /var
    text = config.read_text()
    assert 'state_dir = "/var/lib/edge-app"' in text and 'engine_dir = "/var/cache/edge-app/engines"' in text
    # an existing config is never overwritten
    config.write_text("# mine\n")
    again = subprocess.run([sys.executable, "-m", "edge_app", "service", "install", "--root", str(root),
                            "--source-config", str(ROOT / "config.toml")], capture_output=True, text=True, timeout=60)
    assert "keep existing" in again.stdout and config.read_text() == "# mine\n"
    gone = subprocess.run([sys.executable, "-m", "edge_app", "service", "uninstall", "--root", str(root)],
                          capture_output=True, text=True, timeout=60)
    assert gone.returncode == 0 and not unit.exists() and config.exists()


@pytest.mark.parametrize("uri, expected", [
    ("file://videos/cam.mp4", "file://{base}/videos/cam.mp4"),     # relative (the common slip)
    ("replay://data/set", "replay://{base}/data/set"),
    ("file:///abs/cam.mp4", "file:///abs/cam.mp4"),                # absolute: unchanged
    ("rtsp://10.0.0.5/live", "rtsp://10.0.0.5/live"),              # not a path: unchanged
])
def test_device_config_makes_paths_absolute_and_keeps_comments(tmp_path, uri, expected):
    src = tmp_path / "c.toml"
    src.write_text(f'# my camera\n[source]\nuri = "{uri}"   # where frames come from\n\n'
                   '[models.d]\nkind = "detector"\nartifact = "m/model.onnx"\n[labels]\nsamples_dir = "var/s"\n')
    out = device_config(src)
    assert f'artifact = "{tmp_path}/m/model.onnx"' in out and 'state_dir = "/var/lib/edge-app"' in out
    assert f'uri = "{expected.format(base=tmp_path)}"   # where frames come from' in out
    assert out.startswith("# my camera")


def test_device_config_of_the_shipped_config_is_valid_in_etc(tmp_path):
    """Installed into another folder, the shipped config still loads: no relative path is left behind."""
    from edge_app.config import load_config
    etc = tmp_path / "etc" / "edge-app"
    etc.mkdir(parents=True)
    (etc / "config.toml").write_text(device_config(ROOT / "config.toml"))
    cfg = load_config(etc / "config.toml")  # models and thresholds found from /etc
    assert cfg.resolve(cfg.models["detector"].artifact) == ROOT / "edge_app" / "demo" / "detector.onnx"
    assert cfg.logging.file.startswith("/var/log/edge-app/")
    # everything else the device writes lands under /var/lib/edge-app
    assert cfg.state(cfg.labels.samples_dir) == Path("/var/lib/edge-app/samples")
    assert cfg.state(cfg.events.state_dir) == Path("/var/lib/edge-app/events")
    assert cfg.state(cfg.output.record.directory) == Path("/var/lib/edge-app/recordings")
