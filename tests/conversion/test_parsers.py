"""Imported graphs made for the engine parsers: constants folded, unused opsets dropped, the function kept
(ONNX Runtime's outputs identical), and OpenVINO's ONNX frontend run on the result (standing in for
TensorRT's parser, which cannot run here)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is in the train extra")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from conversion.importers.parsers import clean, openvino_accepts  # noqa: E402
from edge_app.backends import installed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "edge_app" / "demo" / "people.mp4"


def _detector(path: Path) -> Path:
    """A YOLO-shaped detector (1, 6, 1344) whose output shape is computed by a constant sub-graph
    (Constant -> Cast -> Concat, as exporters leave them), with an opset import no node uses."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, axes=[1, 2, 3]),
        helper.make_node("Constant", [], ["head"], value=numpy_helper.from_array(np.array([1.0, 6.0], np.float32))),
        helper.make_node("Cast", ["head"], ["head_i"], to=TensorProto.INT64),
        helper.make_node("Concat", ["head_i", "tail"], ["shape"], axis=0),
        helper.make_node("Expand", ["m", "shape"], ["e"]),
        helper.make_node("Mul", ["e", "w"], ["output0"]),
    ]
    inits = [numpy_helper.from_array(np.array([1344], np.int64), "tail"),
             numpy_helper.from_array(np.random.default_rng(0).random((1, 6, 1344)).astype(np.float32), "w")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 256, 256])],
                          [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 1344])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 3)])
    model.metadata_props.add(key="names", value="{0: 'raccoon', 1: 'cat'}")
    model.metadata_props.add(key="author", value="Ultralytics")
    onnx.save(model, str(path))
    return path


def test_clean_folds_the_shape_sub_graph_and_keeps_the_function(tmp_path):
    import onnxruntime as ort

    src = _detector(tmp_path / "m.onnx")
    model = onnx.load(str(src))
    done = clean(model)
    assert done["folded_constants"] == 3 and done["opsets_dropped"] == ["ai.onnx.ml:3"]
    assert [n.op_type for n in model.graph.node] == ["ReduceMean", "Expand", "Mul"]
    onnx.save(model, str(tmp_path / "clean.onnx"))
    x = np.random.default_rng(1).random((1, 3, 256, 256)).astype(np.float32)
    before = ort.InferenceSession(str(src)).run(None, {"x": x})[0]
    after = ort.InferenceSession(str(tmp_path / "clean.onnx")).run(None, {"x": x})[0]
    np.testing.assert_array_equal(before, after)


@pytest.mark.skipif(not installed("openvino"), reason="OpenVINO is in the dev extra ([openvino])")
def test_an_imported_detector_records_that_openvino_accepts_it(tmp_path):
    from edge_app.core.artifact import read_meta

    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(_detector(tmp_path / "m.onnx")), "--out",
                        str(tmp_path / "out"), "--frames", str(CLIP), "--parity-frames", "2"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    meta = read_meta(tmp_path / "out" / "model.onnx")
    imp = meta.extra["import"]
    assert imp["openvino"].startswith("accepted by OpenVINO 20") and imp["folded_constants"] == 3
    assert imp["parity"]["max_abs"] == 0.0


@pytest.mark.skipif(not installed("openvino"), reason="OpenVINO is in the dev extra ([openvino])")
def test_openvino_accepts_names_what_it_refuses(tmp_path):
    nodes = [helper.make_node("FancyResize", ["x"], ["y"], name="fancy_resize_7", domain="com.example")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]),
              str(tmp_path / "bad.onnx"))
    verdict = openvino_accepts(tmp_path / "bad.onnx")
    assert verdict.startswith("refused by OpenVINO") and "com.example.FancyResize" in verdict
