"""`edge-app doctor`: on this machine, GStreamer rows, the TensorRT row 'missing' with its package, exit 0
for the shipped config and 1 for one that cannot run here."""
import json
import subprocess
import sys

from tests.test_app import ROOT, write_config


def _doctor(config, *extra):
    return subprocess.run([sys.executable, "-m", "edge_app", "doctor", "--config", str(config), *extra],
                          capture_output=True, text=True, timeout=120)


def test_shipped_config_can_run_here():
    r = _doctor(ROOT / "config.toml", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {row["check"]: row for row in json.loads(r.stdout)["rows"]}
    assert rows["GStreamer"]["verdict"] == "ok" and rows["GStreamer"]["detail"].startswith("GStreamer 1.")
    assert rows["TensorRT"]["verdict"] == "missing" and "python3-libnvinfer" in rows["TensorRT"]["detail"]
    assert rows["pycuda"]["verdict"] == "missing" and "[jetson]" in rows["pycuda"]["detail"]
    assert rows["model detector"]["verdict"] == "ok" and "circle" in rows["model detector"]["detail"]
    assert rows["ONNX Runtime"]["verdict"] == "ok" and "CPUExecutionProvider" in rows["ONNX Runtime"]["detail"]
    assert all(r["verdict"] != "fail" for r in rows.values())


def test_a_config_this_machine_cannot_run_fails_with_the_reasons(tmp_path):
    cfg = write_config(tmp_path, source="csi://0", models='[models.d]\nkind = "detector"\nartifact = "absent.onnx"\n',
                       extra="[output.rtsp]\nenabled = true\n")
    r = _doctor(cfg)
    assert r.returncode == 1
    out = r.stdout
    assert "element nvarguscamerasrc" in out and "nvidia-l4t-gstreamer (JetPack)" in out  # the CSI camera source
    assert "FAIL" in out and "absent.onnx" in out                                          # the config problem
    assert "element rtph264pay" in out and "cannot run here" in out


def test_a_taken_port_fails(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        cfg = write_config(tmp_path, port=s.getsockname()[1])
        r = _doctor(cfg, "--json")
    rows = {row["check"]: row for row in json.loads(r.stdout)["rows"]}
    port_row = next(v for k, v in rows.items() if k.startswith("port http"))
    assert r.returncode == 1 and port_row["verdict"] == "fail" and "in use" in port_row["detail"]
