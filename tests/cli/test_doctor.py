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
    # the backends and the CPU features that matter, each with a verdict
    from edge_app.backends import installed
    from edge_app.backends.cpu import cpu_info
    cpu = cpu_info()
    assert rows["CPU"]["detail"] == cpu.describe()
    for feature in ("AVX2", "AVX-512 VNNI", "AMX", "BF16"):
        assert rows[f"CPU {feature}"]["verdict"] == ("ok" if cpu.has(feature) else "missing")
    assert rows["OpenVINO"]["verdict"] == ("ok" if installed("openvino") else "missing")
    assert "[openvino]" in rows["OpenVINO"]["detail"] or "CPU plugin" in rows["OpenVINO"]["detail"]
    assert " on onnxruntime " in rows["model detector"]["detail"] or " on openvino " in rows["model detector"]["detail"]


def test_bf16_asked_on_a_cpu_without_it_or_openvino_missing_fails(tmp_path):
    # the config check cannot know this machine; doctor can: a model asking bf16 where the CPU has no BF16
    # fails on the CPU BF16 row, a model asking backend openvino where OpenVINO is absent on its row
    from edge_app.backends import installed
    from edge_app.backends.cpu import cpu_info
    cfg = write_config(tmp_path, models=f'[models.d]\nkind = "detector"\nartifact = "{ROOT / "edge_app/demo/detector.onnx"}"'
                                        '\nbackend = "openvino"\nprecision = "bf16"\n')
    r = _doctor(cfg, "--json")
    rows = {row["check"]: row for row in json.loads(r.stdout)["rows"]}
    assert rows["CPU BF16"]["verdict"] == ("ok" if cpu_info().has("BF16") else "fail")
    assert rows["OpenVINO"]["verdict"] == ("ok" if installed("openvino") else "fail")
    assert r.returncode == (0 if cpu_info().has("BF16") and installed("openvino") else 1)


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


def test_cpu_rows_on_an_avx2_only_cpu_fail_a_bf16_model(tmp_path, monkeypatch):
    import edge_app.backends.cpu as cpu_mod
    from edge_app.cli.doctor import cpu_rows
    from edge_app.config import load_config
    avx2 = cpu_mod.read_cpuinfo("model name\t: AMD EPYC 7B12\nflags\t\t: sse2 avx avx2 fma\n", 2)
    monkeypatch.setattr(cpu_mod, "cpu_info", lambda: avx2)
    cfg = write_config(tmp_path, models=f'[models.d]\nkind = "detector"\nartifact = "{ROOT / "edge_app/demo/detector.onnx"}"'
                                        '\nbackend = "openvino"\nprecision = "bf16"\n')
    rows = {r.check: r for r in cpu_rows(load_config(cfg))}
    assert rows["CPU"].detail == "AMD EPYC 7B12, 2 cores, AVX2"
    assert rows["CPU AVX2"].verdict == "ok" and rows["CPU AVX-512 VNNI"].verdict == "missing"
    assert rows["CPU AMX"].verdict == "missing"
    assert rows["CPU BF16"].verdict == "fail" and "models d ask precision bf16" in rows["CPU BF16"].detail
