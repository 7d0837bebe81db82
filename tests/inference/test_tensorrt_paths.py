"""TensorRT code paths: type-checked against tensorrt-stubs; engine manifests judged stale or usable;
clear refusals where TensorRT is absent. Building and running engines needs a Jetson/GPU: skipped here."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_app.backends import BackendError, create_backend
from edge_app.core.artifact import read_meta, sha256_file
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
                        "edge_app/backends/tensorrt.py", "edge_app/inference/engines.py"], cwd=ROOT, capture_output=True,
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
    from edge_app.inference.engines import build_engine
    engine = build_engine(demo_detector, "fp16", tmp_path)
    backend = create_backend("tensorrt", engine)
    assert backend.output_names


# ---- engine plans: decided without TensorRT, so the INT8 calibration wiring is tested here ----------
def _model_dir(tmp_path, demo_detector):
    import shutil
    shutil.copy(demo_detector, tmp_path / "model.onnx")
    shutil.copy(demo_detector.with_suffix(".json"), tmp_path / "model.json")
    return tmp_path / "model.onnx"


def test_int8_engine_without_qdq_is_calibrated_on_the_images(tmp_path, demo_detector):
    from edge_app.inference.engines import plan_engine
    from edge_app.datasets.synthetic import make_sample
    import numpy as np
    onnx = _model_dir(tmp_path, demo_detector)
    images = [make_sample(np.random.default_rng(i), 640, 480).image for i in range(3)]
    plan = plan_engine(onnx, "int8", tmp_path, images=images, has_flags=True, typed=False)
    assert plan.source == onnx and plan.flags == ("FP16", "INT8") and plan.calibration == "images"
    meta = read_meta(onnx)
    assert len(plan.batches) == 3
    assert all(b.shape == (1, 3, *meta.input_size) and b.dtype == np.float32 for b in plan.batches)
    # the runtime's own preprocessing, not a copy of it
    from edge_app.frames.preprocess import Preprocessor
    np.testing.assert_array_equal(plan.batches[1], Preprocessor.from_meta(meta)(images[1])[0])


def test_int8_engine_without_images_or_cache_is_refused_not_built_blind(tmp_path, demo_detector):
    from edge_app.core.artifact import ArtifactError
    from edge_app.inference.engines import plan_engine
    onnx = _model_dir(tmp_path, demo_detector)
    with pytest.raises(ArtifactError, match="needs calibration: no QDQ model"):
        plan_engine(onnx, "int8", tmp_path, images=None, has_flags=True, typed=False)
    cache = tmp_path / "model.int8.calibration.cache"
    cache.write_bytes(b"TRT-cache")
    plan = plan_engine(onnx, "int8", tmp_path, images=None, has_flags=True, typed=False)
    assert plan.calibration == "cache" and plan.cache == cache and plan.batches == ()


@pytest.mark.parametrize("precision, typed, source, flags", [
    ("fp32", False, "model.onnx", ()),
    ("fp16", False, "model.onnx", ("FP16",)),
    ("int8", False, "model.int8-qdq.onnx", ("FP16", "INT8")),   # explicit quantization: no calibrator
    ("fp16", True, "model.fp16.onnx", ("STRONGLY_TYPED",)),
    ("int8", True, "model.int8-qdq.onnx", ("STRONGLY_TYPED",)),
])
def test_engine_plan_sources_and_flags(tmp_path, demo_detector, precision, typed, source, flags):
    from edge_app.inference.engines import plan_engine
    onnx = _model_dir(tmp_path, demo_detector)
    for variant in ("model.fp16.onnx", "model.int8-qdq.onnx"):
        (tmp_path / variant).write_bytes(b"variant")
    plan = plan_engine(onnx, precision, tmp_path, images=None, has_flags=not typed, typed=typed)
    assert (plan.source.name, plan.flags, plan.calibration) == (source, flags, None)


def test_build_passes_its_calibration_images_to_the_engine_builds(tmp_path, demo_detector, monkeypatch):
    """`edge-app build --tensorrt` hands the calibration images on (they were dropped before): the engine
    builder itself needs TensorRT, so here it is replaced by a recorder at that one boundary."""
    pytest.importorskip("onnx", reason="the train extra makes the variants")
    import edge_app.inference.engines as engines
    from conversion.build import build
    onnx = _model_dir(tmp_path, demo_detector)
    seen = {}
    monkeypatch.setattr(engines, "build_engines", lambda fp32, d, images=None, log=print: seen.update(images=images))
    build(onnx, precisions=("fp16",), count=3, tensorrt=True, engine_dir=tmp_path, log=lambda m: None,
          progress=False, limit=2)
    assert len(seen["images"]) == 3 and seen["images"][0].ndim == 3
