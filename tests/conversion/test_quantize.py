"""FP16 and INT8 variants of a real (tiny, trained) model: each runs in ONNX Runtime through the runtime's
code, stays close to FP32, carries its metadata; entropy calibration is real (not minmax in disguise)."""
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the train extra is needed to make the model")
pytest.importorskip("onnxconverter_common", reason="the train extra is needed for FP16")

from conversion import quantize  # noqa: E402
from conversion.build import build  # noqa: E402
from conversion.train import TrainConfig, train  # noqa: E402
from edge_app.core.artifact import read_embedded_meta, read_meta  # noqa: E402
from edge_app.inference.artifacts import variant_path  # noqa: E402
from edge_app.inference.models import open_artifact  # noqa: E402
from edge_app.synthetic import make_sample  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_unet(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unet")
    train(TrainConfig(model="unet", data="synthetic", synthetic_train=16, synthetic_val=6, epochs=2, batch_size=4,
                      input_size=(64, 96), unet_depth=2, unet_base=8, out=str(out), progress=False))
    return out / "model.onnx"


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [make_sample(rng, 96, 64).image for _ in range(n)]


def test_fp16_variant(tiny_unet, tmp_path):
    out = tmp_path / "model.fp16.onnx"
    meta = quantize.to_fp16(tiny_unet, out)
    assert meta.precision == "fp16" and read_embedded_meta(out).precision == "fp16"
    a, b = open_artifact(tiny_unet), open_artifact(out)
    img = _images(1)[0]
    assert (a.predict(img).mask.labels == b.predict(img).mask.labels).mean() > 0.98


@pytest.mark.parametrize("recipe", quantize.RECIPES)
@pytest.mark.parametrize("method", quantize.CALIBRATION_METHODS)
def test_int8_variants_run_and_stay_close(tiny_unet, tmp_path, recipe, method):
    out = tmp_path / f"model.{recipe}.{method}.onnx"
    meta = quantize.to_int8(tiny_unet, out, _images(8), recipe=recipe, method=method, work=tmp_path)
    q = meta.extra["quantization"]
    assert meta.precision == "int8" and (q["recipe"], q["calibration"], q["images"]) == (recipe, method, 8)
    assert q["cache"].startswith(f"model.calib-{method}.") and (tmp_path / q["cache"]).is_file()
    assert read_meta(out).onnx_sha256 == meta.onnx_sha256
    a, b = open_artifact(tiny_unet), open_artifact(out)
    agree = np.mean([(a.predict(i).mask.labels == b.predict(i).mask.labels).mean() for i in _images(3, seed=9)])
    assert agree > 0.9


def test_entropy_ranges_differ_from_minmax(tiny_unet, tmp_path):
    """ORT's entropy calibrator with default bins equals minmax; ours searches 2048 bins."""
    from edge_app.core.artifact import read_meta as rm
    reader = quantize.ImageReader(_images(8), rm(tiny_unet))
    prep = quantize.preprocess_for_quantization(tiny_unet, tmp_path / "prep.onnx")
    mm = json.loads(quantize.calibration_cache(prep, reader, "minmax", tmp_path / "mm.json").read_text())
    en = json.loads(quantize.calibration_cache(prep, reader, "entropy", tmp_path / "en.json").read_text())
    assert mm != en


def test_build_writes_all_variants_and_the_gate_table(tiny_unet):
    table = build(tiny_unet, count=6, log=lambda m: None)
    assert [r["precision"] for r in table] == ["fp32", "fp16", "int8", "int8"]
    for precision in ("fp16", "int8", "int8-qdq"):
        path = variant_path(tiny_unet, precision)
        meta = read_meta(path)
        assert meta.extra["precision_table"] == table
        assert path.stat().st_size > 0
    for row in table[1:]:
        assert {"value", "delta_points", "median_ms", "size_mb", "within_tolerance", "speedup_vs_fp32"} <= set(row)
