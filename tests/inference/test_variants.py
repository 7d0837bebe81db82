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


# ---- a precision is measured for the setting that runs (whole frame or tiles) ----------------------------
@pytest.fixture()
def det_dir(tmp_path):
    # the shipped SSDLite person detector and its INT8 variant (gated by build on whole frames)
    from pathlib import Path
    demo = Path(__file__).resolve().parents[2] / "edge_app" / "demo"
    for name in ("person.onnx", "person.json", "person.int8.onnx", "person.int8.json"):
        shutil.copy(demo / name, tmp_path / name)
    return tmp_path


def _det(folder, precision="auto", tiles=None):
    from edge_app.frames.tiles import TileSpec
    return ModelSpec("det", "detector", folder / "person.onnx", precision=precision, backend="onnxruntime",
                     tiles=tiles or TileSpec())


def test_a_tiled_model_never_runs_a_precision_measured_on_whole_frames(det_dir, caplog):
    from edge_app.inference.artifacts import write_recommendation
    from edge_app.frames.tiles import TileSpec

    sha = read_meta(det_dir / "person.onnx").onnx_sha256
    write_recommendation(det_dir / "person.onnx", {"precision": "int8", "checked": True, "onnx_sha256": sha})
    assert open_model(_det(det_dir)).precision == "int8"  # whole frame: as calibrate chose
    tiles = TileSpec(3, 2, 0.2, False)
    with caplog.at_level(logging.WARNING):
        model = open_model(_det(det_dir, tiles=tiles))
    assert model.precision == "fp32" and "measured on whole frame, this model runs 3x2 tiles" in caplog.text
    # calibrate --apply on the tiles: FP32 chosen there; the whole frame's choice is kept beside it
    write_recommendation(det_dir / "person.onnx", {"precision": "fp32", "checked": True, "onnx_sha256": sha},
                         tiles.setting)
    data = json.loads((det_dir / "person.precision.json").read_text())
    assert set(data["by_setting"]) == {"whole frame", tiles.setting}
    assert recommended_precision(det_dir / "person.onnx", sha, tiles.setting) == "fp32"
    assert recommended_precision(det_dir / "person.onnx", sha) == "int8"
    write_recommendation(det_dir / "person.onnx", {"precision": "int8", "checked": True, "onnx_sha256": sha},
                         tiles.setting)
    assert open_model(_det(det_dir, tiles=tiles)).precision == "int8"


def test_int8_configured_by_hand_on_tiles_says_what_it_was_gated_on(det_dir, caplog):
    from edge_app.frames.tiles import TileSpec

    with caplog.at_level(logging.WARNING):
        model = open_model(_det(det_dir, "int8", TileSpec(2, 2, 0.2, True)))
    assert model.precision == "int8"  # asked for: run it, and say so
    assert "person.int8.onnx was calibrated and gated on whole frame, this model runs 2x2 tiles" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        open_model(_det(det_dir, "int8"))
    assert "gated on" not in caplog.text


def test_thresholds_chosen_on_another_setting_are_flagged(det_dir, caplog):
    from dataclasses import replace
    from pathlib import Path

    from edge_app.frames.tiles import TileSpec

    shipped = Path(__file__).resolve().parents[2] / "edge_app" / "demo" / "person.thresholds.json"
    spec = replace(_det(det_dir, "fp32"), thresholds_file=shipped)  # calibrated on whole frames
    with caplog.at_level(logging.WARNING):
        open_model(spec)
    assert "chose these thresholds" not in caplog.text
    with caplog.at_level(logging.WARNING):
        model = open_model(replace(spec, tiles=TileSpec(3, 2, 0.2, False)))
    assert "chose these thresholds on whole frame, this model runs 3x2 tiles" in caplog.text
    assert model.thresholds_source == str(shipped)  # still used: the warning says what to do


def test_the_recommendation_file_shows_the_whole_frames_choice_at_its_top(det_dir):
    # readers of the top level only (an older runtime, a person) see the whole frame's choice
    from edge_app.inference.artifacts import write_recommendation

    sha = read_meta(det_dir / "person.onnx").onnx_sha256
    write_recommendation(det_dir / "person.onnx", {"precision": "fp32", "checked": True, "onnx_sha256": sha}, "3x2 tiles")
    assert json.loads((det_dir / "person.precision.json").read_text())["precision"] == "fp32"  # the only one
    write_recommendation(det_dir / "person.onnx", {"precision": "int8", "checked": True, "onnx_sha256": sha})
    write_recommendation(det_dir / "person.onnx", {"precision": "fp32", "checked": True, "onnx_sha256": sha}, "2x2 tiles")
    data = json.loads((det_dir / "person.precision.json").read_text())
    assert data["precision"] == "int8" and data["setting"] == "whole frame"
    assert set(data["by_setting"]) == {"whole frame", "3x2 tiles", "2x2 tiles"}
