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
from edge_app.datasets.synthetic import make_sample  # noqa: E402

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
    assert meta.precision == recipe and (q["recipe"], q["calibration"], q["images"]) == (recipe, method, 8)
    assert q["cache"].startswith(f"model.calib-{method}.") and (tmp_path / q["cache"]).is_file()
    assert read_meta(out).onnx_sha256 == meta.onnx_sha256
    a, b = open_artifact(tiny_unet), open_artifact(out)
    agree = np.mean([(a.predict(i).mask.labels == b.predict(i).mask.labels).mean() for i in _images(3, seed=9)])
    assert agree > 0.9


def test_variants_import_only_the_opsets_they_use(tiny_unet, tmp_path):
    """ORT's pre-processing stamps ai.onnx.ml opset 5 and other domains on the model; ONNX Runtime 1.16
    (JetPack's) refuses to load such a file (seen here), although no node needs them."""
    import onnx
    quantize.to_int8(tiny_unet, tmp_path / "m.int8.onnx", _images(4), work=tmp_path)
    quantize.to_fp16(tiny_unet, tmp_path / "m.fp16.onnx")
    for name in ("m.int8.onnx", "m.fp16.onnx"):
        model = onnx.load(str(tmp_path / name))
        used = {n.domain or "" for n in model.graph.node}
        assert {o.domain or "" for o in model.opset_import} <= used | {""}, name
        assert "ai.onnx.ml" not in {o.domain for o in model.opset_import}


def test_entropy_ranges_differ_from_minmax(tiny_unet, tmp_path):
    """ORT's entropy calibrator with default bins equals minmax; ours searches 2048 bins."""
    from edge_app.core.artifact import read_meta as rm
    reader = quantize.ImageReader(_images(8), rm(tiny_unet))
    prep = quantize.preprocess_for_quantization(tiny_unet, tmp_path / "prep.onnx")
    mm = json.loads(quantize.calibration_cache(prep, reader, "minmax", tmp_path / "mm.json").read_text())
    en = json.loads(quantize.calibration_cache(prep, reader, "entropy", tmp_path / "en.json").read_text())
    assert mm != en


def test_calibration_cache_is_keyed_by_the_calibration_images(tiny_unet, tmp_path):
    """Other --data or --count must not reuse ranges computed on other images (they did: the key was the
    model and the method only)."""
    a = quantize.to_int8(tiny_unet, tmp_path / "a.onnx", _images(6), work=tmp_path)
    b = quantize.to_int8(tiny_unet, tmp_path / "b.onnx", _images(6, seed=5), work=tmp_path)   # other images
    c = quantize.to_int8(tiny_unet, tmp_path / "c.onnx", _images(4), work=tmp_path)           # fewer of them
    again = quantize.to_int8(tiny_unet, tmp_path / "d.onnx", _images(6), work=tmp_path)       # the same six
    names = [m.extra["quantization"]["cache"] for m in (a, b, c, again)]
    assert len(set(names[:3])) == 3 and names[3] == names[0]
    assert (tmp_path / names[1]).read_text() != (tmp_path / names[0]).read_text()  # other ranges


def test_build_writes_all_variants_and_the_gate_table(tiny_unet):
    table = build(tiny_unet, count=6, log=lambda m: None, progress=False)
    assert [r["precision"] for r in table] == ["fp32", "fp16", "int8", "int8-qdq"]
    for precision in ("fp16", "int8", "int8-qdq"):
        path = variant_path(tiny_unet, precision)
        meta = read_meta(path)
        assert meta.extra["precision_table"] == table
        assert path.stat().st_size > 0
    for row in table[1:]:
        assert {"value", "delta_points", "median_ms", "size_mb", "within_tolerance", "speedup_vs_fp32"} <= set(row)
        assert isinstance(row["within_tolerance"], bool) and row["gate"] in ("passed", f"failed: loses more than 1.0 points")


def test_int8_that_fails_the_gate_is_rebuilt_with_sensitive_nodes_in_float(tiny_unet):
    """The fallback: while INT8 loses more than the tolerance, node groups (heads, then the stem, ...) are
    kept in float and the variant rebuilt. A gate no variant can pass (tolerance below any loss) walks the
    whole list; the last group is recorded and really is float in the graph."""
    import onnx
    logs = []
    table = build(tiny_unet, precisions=("int8",), count=6, tolerance=-1000.0, log=logs.append, progress=False)
    row = table[1]
    groups = quantize.sensitive_node_candidates(tiny_unet)
    assert row["kept_in_float"] == groups[-1] and len(groups[-1]) > len(groups[0]) > 0
    assert row["within_tolerance"] is False and row["gate"].startswith("failed")
    assert any("keeping sensitive nodes in float" in m for m in logs)
    graph = onnx.load(str(variant_path(tiny_unet, "int8"))).graph
    produced_by = {o: n.op_type for n in graph.node for o in n.output}
    kept = [n for n in graph.node if n.name in set(row["kept_in_float"])]
    assert len(kept) == len(row["kept_in_float"])
    weights = {i.name for i in graph.initializer}
    for node in kept:  # a node kept in float has its float weights: no DequantizeLinear in front of them
        assert node.input[1] in weights and produced_by.get(node.input[1]) is None, node.name
    quantized = [n for n in graph.node if n.op_type == "Conv" and n.name not in set(row["kept_in_float"])]
    assert quantized and all(produced_by.get(n.input[1]) == "DequantizeLinear" for n in quantized)  # the rest INT8
    assert read_meta(variant_path(tiny_unet, "int8")).extra["quantization"]["kept_in_float"] == groups[-1]


def test_build_without_validation_data_is_unchecked_not_passed(tiny_unet, tmp_path, monkeypatch):
    import shutil
    from dataclasses import replace
    from edge_app.core.artifact import write_sidecar
    model = tmp_path / "model.onnx"
    shutil.copy(tiny_unet, model)
    meta = read_meta(tiny_unet)
    # an artifact that records no validation data (trained elsewhere), and no --val-data
    write_sidecar(model, replace(meta, extra={**meta.extra, "training": {"config": {"data": str(tmp_path / "gone")}}}))
    data = tmp_path / "calib"
    from edge_app.datasets.synthetic import write_dataset
    write_dataset(data, 6, width=96, height=64)
    logs = []
    table = build(model, data=str(data), precisions=("int8",), count=4, log=logs.append, progress=False)
    assert table[1]["within_tolerance"] is None and table[1]["gate"].startswith("unchecked")
    assert table[1]["delta_points"] is None and any("accuracy gate is skipped" in m for m in logs)


def test_build_on_tiles_calibrates_on_tiles_and_records_the_setting(tmp_path, demo_detector, monkeypatch):
    # A detector that runs 2x1 tiles: INT8's calibration images are the tiles (narrower than the frames),
    # the gate measured tiled, and the variant says which setting it was gated on (the runtime compares).
    import shutil

    from edge_app.inference.artifacts import gate_setting
    from edge_app.frames.tiles import TileSpec

    for suffix in (".onnx", ".json"):
        shutil.copy(demo_detector.with_suffix(suffix), tmp_path / f"det{suffix}")
    seen = []
    real = quantize.to_int8

    def spy(fp32, out, images, **kw):  # records what the calibrator is given, then calibrates for real
        seen.extend(im.shape for im in images)
        return real(fp32, out, images, **kw)

    monkeypatch.setattr(quantize, "to_int8", spy)
    tiles = TileSpec(2, 1, 0.2, False)
    table = build(tmp_path / "det.onnx", precisions=("int8",), count=4, limit=6, log=lambda m: None,
                  progress=False, tiles=tiles)
    width = read_meta(tmp_path / "det.onnx").input_size[1]
    assert seen and all(w < width for _, w, _ in seen), seen  # tiles of the frames, not the frames
    assert [r["setting"] for r in table] == ["2x1 tiles, overlap 0.2"] * 2
    assert gate_setting(read_meta(variant_path(tmp_path / "det.onnx", "int8"))) == tiles.setting
