"""Reading a detector's head family from its output shapes, and ``edge-app import model.onnx`` on real
ONNX files whose outputs have those shapes: the family named with its reason, an unknown or ambiguous
layout refused naming the shapes and the families tried, a wrong class count refused; nothing written."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_app.decoders.heads.layout import LayoutError, detect

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "edge_app" / "demo" / "people.mp4"


@pytest.mark.parametrize("outputs, size, classes, head, params", [
    ({"o": (1, 84, 8400)}, (640, 640), None, "yolo", {"layout": "anchor-free"}),
    ({"o": (1, 5, 1344)}, (256, 256), None, "yolo", {"layout": "anchor-free"}),
    ({"o": (1, 25200, 85)}, (640, 640), None, "yolo", {"layout": "anchor-based"}),
    ({"o": (1, 300, 84)}, (640, 640), 80, "detr", {"layout": "joined"}),
    ({"b": (1, 300, 4), "s": (1, 300, 80)}, (640, 640), 80, None, None),  # ssd or detr: ambiguous
    ({"s": (1, 3549, 80), "b": (1, 3549, 44)}, (416, 416), 80, "gfl", {"strides": [8, 16, 32], "reg_max": 10}),
    ({"s": (1, 3598, 80), "b": (1, 3598, 32)}, (416, 416), 80, "gfl", {"strides": [8, 16, 32, 64], "reg_max": 7}),
    ({"o": (1, 300, 6)}, (640, 640), 80, None, None),  # yolo-e2e or RT-DETR's top-k: ambiguous
])
def test_families_from_shapes(outputs, size, classes, head, params):
    if head is None:
        with pytest.raises(LayoutError, match="fit several families") as e:
            detect(outputs, size, classes)
        assert all(str(list(s)) in str(e.value) for s in outputs.values()) and "--head" in str(e.value)
        return
    lay = detect(outputs, size, classes)
    assert lay.head == head and all(lay.params[k] == v for k, v in params.items()), lay
    assert lay.reason


def test_a_hint_settles_an_ambiguity_and_an_unknown_layout_names_what_was_tried():
    assert detect({"o": (1, 300, 6)}, (640, 640), 80, "yolo-e2e").head == "yolo-e2e"
    assert detect({"o": (1, 300, 6)}, (640, 640), 80, "detr").params == {"layout": "topk"}
    with pytest.raises(LayoutError) as e:
        detect({"o": (1, 1000, 7)}, (640, 640), 80)
    assert "o [1, 1000, 7]" in str(e.value) and "tried: ssd, gfl, yolo" in str(e.value)
    with pytest.raises(LayoutError, match="with 3 classes fit no family"):
        detect({"o": (1, 84, 8400)}, (640, 640), 3)  # 80 classes in the graph, 3 named


def _onnx(path: Path, outputs: dict[str, tuple], size=(256, 256), names: str | None = None,
          declared: dict[str, list] | None = None) -> Path:
    """A real ONNX model with one image input and outputs of the given shapes (constants broadcast by the
    image's mean, so ONNX Runtime runs it); ``declared``: the shapes the graph states instead (symbolic)."""
    nodes, outs, inits = [helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0, axes=[1, 2, 3])], [], []
    for k, (name, shape) in enumerate(outputs.items()):
        inits.append(numpy_helper.from_array(np.random.default_rng(k).random(shape).astype(np.float32), f"c{k}"))
        inits.append(numpy_helper.from_array(np.array(list(shape[:1]) + [1] * (len(shape) - 1), np.int64), f"s{k}"))
        nodes += [helper.make_node("Reshape", ["m", f"s{k}"], [f"r{k}"]), helper.make_node("Mul", [f"c{k}", f"r{k}"], [name])]
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, (declared or {}).get(name, list(shape))))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *size])], outs, inits)
    g.node[0].input[0] = "x"
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    if names:
        model.metadata_props.add(key="names", value=names)
        model.metadata_props.add(key="author", value="Ultralytics")
    onnx.save(model, str(path))
    return path


def _import(path: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_app", "import", str(path), "--out", str(out), "--frames",
                           str(CLIP), "--parity-frames", "2", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("outputs, args, message", [
    ({"out": (1, 7, 99)}, ["--names", "coco"], "out [1, 7, 99] at input 256x256 with 80 classes fit no family (tried"),
    ({"out": (1, 84, 1344)}, ["--classes", "a,b"], "with 2 classes fit no family"),
    ({"out": (1, 300, 6)}, ["--names", "coco", "--color", "RGB", "--mean", "0,0,0", "--std", "255,255,255",
                            "--resize", "letterbox"], "fit several families"),
    ({"out": (1, 6, 1344)}, ["--classes", "a,b"], "its preprocessing is not in the file; give --color"),
])
def test_bad_onnx_detectors_are_refused_and_nothing_is_written(tmp_path, outputs, args, message):
    model = _onnx(tmp_path / "m.onnx", outputs)
    out = tmp_path / "out"
    r = _import(model, out, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_a_class_list_of_another_length_than_the_files_own_is_refused(tmp_path):
    model = _onnx(tmp_path / "m.onnx", {"output0": (1, 6, 1344)}, names="{0: 'raccoon', 1: 'cat'}")
    r = _import(model, tmp_path / "out", "--classes", "a,b,c")
    assert r.returncode == 2 and "the file names 2 classes" in r.stderr and "give 3" in r.stderr, r.stderr


def test_an_ultralytics_style_file_imports_with_its_own_names_and_a_dynamic_batch(tmp_path):
    from edge_app.core.artifact import read_meta

    model = _onnx(tmp_path / "m.onnx", {"output0": (1, 6, 1344)}, names="{0: 'raccoon', 1: 'cat'}")
    r = _import(model, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    meta = read_meta(tmp_path / "out" / "model.onnx")
    assert meta.head == "yolo" and meta.classes == ("raccoon", "cat") and meta.resize == "letterbox"
    assert meta.extra["import"]["batch"] == "dynamic" and meta.extra["import"]["parity"]["max_abs"] == 0.0
    assert "1344 anchor points" in meta.extra["head_reason"]


def test_symbolic_output_shapes_are_measured_by_running_the_file(tmp_path):
    # ultralytics' RT-DETR export declares its top-k output [batch, k, 6]: the importer runs the file once
    from edge_app.core.artifact import read_meta

    model = _onnx(tmp_path / "m.onnx", {"output0": (1, 100, 6)}, names="{0: 'raccoon'}",
                  declared={"output0": ["batch", "k", 6]})
    r = _import(model, tmp_path / "out")
    assert r.returncode == 2 and "[1, 100, 6]" in r.stderr and "fit several families" in r.stderr, r.stderr
    r = _import(model, tmp_path / "out", "--head", "detr")
    assert r.returncode == 0, r.stderr
    meta = read_meta(tmp_path / "out" / "model.onnx")
    assert meta.head == "detr" and meta.head_params["layout"] == "topk" and meta.resize == "stretch"
