"""TensorRT code paths: type-checked against tensorrt-stubs; engine manifests judged stale or usable;
clear refusals where TensorRT is absent. Building and running engines needs a Jetson/GPU: skipped here."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_app.backends import BackendError, create_backend
from edge_app.core.artifact import sha256_file
from edge_app.inference.artifacts import check_engine, engine_paths
from edge_app.inference.models import ModelError, ModelSpec, open_model

ROOT = Path(__file__).resolve().parents[2]


def _has_real_tensorrt() -> bool:
    try:
        import tensorrt
        return hasattr(tensorrt, "Builder")
    except ImportError:
        return False


def test_tensorrt_modules_type_check_against_stubs():
    pytest.importorskip("mypy", reason="mypy is in the dev extra")
    try:
        import importlib.metadata as md
        md.version("tensorrt-stubs")
    except Exception:
        pytest.skip("tensorrt-stubs not installed (make test installs it with --no-deps)")
    r = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
                        "edge_app/backends/tensorrt.py", "edge_app/engines.py"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def _manifest(tmp_path, onnx, **over):
    engine, manifest = engine_paths(tmp_path, onnx, "fp16")
    engine.write_bytes(b"engine")
    data = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7", "onnx_sha256": sha256_file(onnx),
            "precision": "fp16", **over}
    manifest.write_text(json.dumps(data))
    return engine, manifest


DEVICE = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"}


@pytest.mark.parametrize("over, device, usable, reason", [
    ({}, DEVICE, True, "up to date"),
    ({"onnx_sha256": "0" * 64}, DEVICE, False, "another version"),
    ({}, {**DEVICE, "gpu": "Xavier"}, False, "built for gpu 'Orin'"),
    ({}, {**DEVICE, "tensorrt": "8.5.2"}, False, "built for tensorrt '10.3.0'"),
])
def test_engine_manifest_checks(tmp_path, over, device, usable, reason):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    engine, manifest = _manifest(tmp_path, onnx, **over)
    check = check_engine(engine, manifest, onnx, device)
    assert check.usable is usable and reason in check.reason


def test_missing_engine_and_manifest(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"x")
    engine, manifest = engine_paths(tmp_path, onnx, "int8")
    assert "no engine" in check_engine(engine, manifest, onnx, DEVICE).reason
    engine.write_bytes(b"e")
    assert "no manifest" in check_engine(engine, manifest, onnx, DEVICE).reason


@pytest.mark.skipif(_has_real_tensorrt(), reason="TensorRT is installed: the refusal path does not apply")
def test_tensorrt_backend_refuses_clearly_without_tensorrt(tmp_path):
    with pytest.raises(BackendError, match="TensorRT is not installed"):
        create_backend("tensorrt", tmp_path / "x.engine")


@pytest.mark.skipif(_has_real_tensorrt(), reason="TensorRT is installed")
def test_configured_tensorrt_backend_is_refused_with_advice(tmp_path, demo_detector):
    spec = ModelSpec("det", "detector", demo_detector, backend="tensorrt", engine_dir=tmp_path)
    with pytest.raises(ModelError, match="backend tensorrt refused: TensorRT/pycuda are not installed"):
        open_model(spec)
    # auto falls back to ONNX Runtime
    assert open_model(ModelSpec("det", "detector", demo_detector, backend="auto", engine_dir=tmp_path)).backend.name == "onnxruntime"


@pytest.mark.skipif(not _has_real_tensorrt(), reason="needs TensorRT and a GPU (a Jetson); not available on CI")
def test_engine_build_and_run_on_device(tmp_path, demo_detector):
    from edge_app.engines import build_engine
    engine = build_engine(demo_detector, "fp16", tmp_path)
    backend = create_backend("tensorrt", engine)
    assert backend.output_names
