"""Which precision variant the runtime opens: calibrate's recommendation, and never a variant (or a
recommendation) made for another version of the model."""
import json
import logging
import shutil

import pytest

from edge_app.core.artifact import read_meta, write_sidecar
from edge_app.inference.artifacts import recommended_precision
from edge_app.inference.models import ModelError, ModelSpec, open_model


@pytest.fixture()
def seg_dir(tmp_path, demo_segmenter):
    # The shipped demo segmenter with its INT8 variant, and a recommendation of INT8 as calibrate --apply
    # writes one (measured: "checked"); which precision the shipped file names depends on the CPU it was
    # calibrated on, so the tests write their own.
    for name in ("segmenter.onnx", "segmenter.json", "segmenter.int8.onnx", "segmenter.int8.json"):
        shutil.copy(demo_segmenter.with_name(name), tmp_path / name)
    (tmp_path / "segmenter.precision.json").write_text(json.dumps({
        "precision": "int8", "why": "test", "checked": True, "metric": "mIoU", "value": 0.64,
        "onnx_sha256": read_meta(tmp_path / "segmenter.onnx").onnx_sha256}))
    return tmp_path


def _spec(folder, precision="auto"):
    return ModelSpec("seg", "segmenter", folder / "segmenter.onnx", precision=precision, backend="onnxruntime")


def test_auto_runs_the_recommended_variant(seg_dir):
    model = open_model(_spec(seg_dir))
    assert model.precision == "int8" and model.path.name == "segmenter.int8.onnx"


def test_a_variant_built_from_another_model_is_refused_or_skipped(seg_dir, caplog):
    variant = seg_dir / "segmenter.int8.onnx"
    meta = read_meta(variant)
    write_sidecar(variant, type(meta)(**{**meta.__dict__, "extra": {**meta.extra, "source_onnx_sha256": "0" * 64}}))
    with caplog.at_level(logging.WARNING):
        model = open_model(_spec(seg_dir))
    assert model.precision == "fp32" and model.path.name == "segmenter.onnx"
    assert "another version" in caplog.text
    with pytest.raises(ModelError, match="built from another version"):
        open_model(_spec(seg_dir, "int8"))


def test_a_recommendation_for_another_model_is_ignored(seg_dir):
    fp32 = seg_dir / "segmenter.onnx"
    sha = read_meta(fp32).onnx_sha256
    assert recommended_precision(fp32, sha) == "int8"
    rec = seg_dir / "segmenter.precision.json"
    rec.write_text(json.dumps({**json.loads(rec.read_text()), "onnx_sha256": "f" * 64}))
    assert recommended_precision(fp32, sha) is None
    assert open_model(_spec(seg_dir)).precision == "fp32"


def test_a_recommendation_nobody_measured_is_ignored(seg_dir, caplog):
    rec = seg_dir / "segmenter.precision.json"
    data = json.loads(rec.read_text())
    del data["checked"]
    rec.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        model = open_model(_spec(seg_dir))
    assert model.precision == "fp32" and "without a measured metric" in caplog.text
