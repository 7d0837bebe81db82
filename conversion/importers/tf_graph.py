"""Import a TensorFlow Object Detection API SSD (a TF1 frozen graph, as the model zoo's and
jetson-inference's ssd-mobilenet-v2 ship) as an ONNX artifact that runs through our own decoder and NMS.

The graph is cut on both sides of the network:

- before it: the input becomes the preprocessor's output (``Preprocessor/sub``), a (1, H, W, 3) float
  image, so resizing and normalisation are the runtime's preprocessing (one module for runtime,
  calibration and evaluation). The normalisation is measured, not assumed: the graph is run on a black
  and a white image and the affine map gives mean and std;
- after it: the raw box encodings (``Squeeze``, (1, A, 4)) and class logits (``concat_1``, (1, A, C+1)),
  before TF's own decoding and NMS. The anchors (``Concatenate/concat``) are evaluated once and the box
  coder's scale factors read from the graph; the decoding is appended in plain ONNX (Gather, Div, Mul,
  Add, Exp, Concat, Sigmoid), so the artifact's outputs are ours: ``boxes`` (1, A, 4) xyxy in input
  pixels and ``scores`` (1, A, C+1) sigmoid with column 0 = background.

No TF-only op is left (the ops are listed in the artifact and checked against the set TensorRT parses).
Parity is measured twice and refused above tolerance: the network's raw outputs, ONNX Runtime against
TensorFlow on the same inputs; and the detections, our runtime (preprocessing + ONNX + our decoder and
NMS at TF's IoU) against the whole TF graph on real frames, at one score threshold.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..extras import require

log = logging.getLogger("conversion.import")

# The operators this import may leave in the graph: all parsed by TensorRT's ONNX parser (its
# supported-operator list) and run by ONNX Runtime.
ALLOWED_OPS = {"Add", "BatchNormalization", "Clip", "Concat", "Conv", "Reshape", "Squeeze", "Transpose", "Relu",
               "Gather", "Div", "Mul", "Sub", "Exp", "Sigmoid", "Unsqueeze", "Identity", "Relu6", "Max", "Min"}
NAMES = {"image": "image_tensor:0", "pre": "Preprocessor/sub:0", "encodings": "Squeeze:0", "logits": "concat_1:0",
         "anchors": "Concatenate/concat:0"}
SCALES = [f"Postprocessor/Decode/truediv{s}/y:0" for s in ("", "_1", "_2", "_3")]
TF_OUTPUTS = ["num_detections:0", "detection_boxes:0", "detection_scores:0", "detection_classes:0"]
DECODED = "Postprocessor/Decode/transpose_1:0"  # TF's decoded boxes before NMS (the raw parity's reference)


class ImportError_(ValueError):
    """The model is not what this importer reads, or its parity is beyond tolerance."""


def load_graph(path: Path) -> Any:
    """A frozen GraphDef from a ``.pb`` file or a SavedModel directory (see read_saved_model)."""
    return read_saved_model(path) if Path(path).is_dir() else read_graph(path)


def source_file(path: Path) -> Path:
    """The file whose digest identifies the model: the .pb itself, or a SavedModel's saved_model.pb."""
    return Path(path) / "saved_model.pb" if Path(path).is_dir() else Path(path)


def read_saved_model(path: Path) -> Any:
    """A TF1 Object Detection API SavedModel directory (``saved_model.pb`` + ``variables/``, as the OD API's
    TF1 exporter writes beside its frozen graph), frozen: its ``serving_default`` signature must take the
    uint8 images (``image_tensor``); variables become constants, pruned to the signature's outputs."""
    tf = require("tensorflow")
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise ImportError_(f"{path}: not a SavedModel directory (no saved_model.pb in it)")
    g = tf.Graph()
    with tf.compat.v1.Session(graph=g) as sess:
        try:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(path))
        except Exception as exc:  # wrong tags, unreadable protobuf, missing variables
            raise ImportError_(f"{path}: not loadable as a SavedModel with the 'serve' tag: "
                               f"{str(exc).splitlines()[0][:200]}") from None
        sig = meta.signature_def.get("serving_default")
        if sig is None:
            raise ImportError_(f"{path}: no 'serving_default' signature (it has: {sorted(meta.signature_def)})")
        images = [v.name for v in sig.inputs.values()
                  if v.dtype == tf.uint8.as_datatype_enum and len(v.tensor_shape.dim) == 4]
        if not images:
            found = {k: (tf.dtypes.as_dtype(v.dtype).name, len(v.tensor_shape.dim)) for k, v in sig.inputs.items()}
            raise ImportError_(f"{path}: the serving_default signature has no images input (expected a uint8 "
                               f"(batch, H, W, 3) tensor); its inputs (dtype, rank): {found}")
        if images[0] != NAMES["image"]:
            raise ImportError_(f"{path}: the images input is {images[0]}, expected {NAMES['image']} (a TF1 Object "
                               "Detection API export; TF2 zoo SavedModels trace functions and are not read)")
        # keep what the import reads (cut points, TF's own detections for the parity) where the graph has it;
        # _check names what is missing
        ops = {op.name for op in g.get_operations()}
        wanted = [*(v.name for v in sig.outputs.values()), *NAMES.values(), *SCALES, *TF_OUTPUTS, DECODED]
        outputs = sorted({n.split(":")[0] for n in wanted} & ops)
        gd = tf.compat.v1.graph_util.convert_variables_to_constants(sess, g.as_graph_def(), outputs)
    return _check(gd, path)


def read_graph(path: Path) -> Any:
    tf = require("tensorflow")
    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(Path(path).read_bytes())
    except Exception as exc:  # DecodeError: not a GraphDef
        raise ImportError_(f"{path}: not a TensorFlow frozen graph (GraphDef .pb): {exc}") from None
    return _check(gd, path)


def _check(gd: Any, path: Path) -> Any:
    names = {n.name for n in gd.node}
    missing = [t for t in [*NAMES.values(), *SCALES] if t.split(":")[0] not in names]
    if missing:
        raise ImportError_(f"{path}: not a TF Object Detection API SSD graph: no tensor {missing[0]} "
                           "(expected image_tensor, Preprocessor/sub, Squeeze, concat_1, Concatenate/concat)")
    return gd


class TfSsd:
    """The whole TF graph in a session: its own output on uint8 RGB frames, and the tensors we need."""

    def __init__(self, gd: Any) -> None:
        tf = require("tensorflow")
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(gd, name="")
        self.sess = tf.compat.v1.Session(graph=self.graph)

    def run(self, rgb: np.ndarray, names: list[str]) -> list[np.ndarray]:
        return self.sess.run(names, {NAMES["image"]: rgb[None]})

    def detections(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TF's own boxes (N, 4) xyxy pixels of ``rgb``, scores (N,), classes (N,) 0-based (no background)."""
        n, boxes, scores, classes = self.run(rgb, TF_OUTPUTS)
        k = int(n[0])
        h, w = rgb.shape[:2]
        b = boxes[0, :k][:, [1, 0, 3, 2]] * np.array([w, h, w, h], np.float32)
        return b, scores[0, :k], classes[0, :k].astype(np.int64) - 1

    def nms_iou(self) -> float | None:
        """The IoU threshold of TF's own NMS (a constant input of its NonMaxSuppression op)."""
        for op in self.graph.get_operations():
            if op.type.startswith("NonMaxSuppression") and len(op.inputs) > 3 and op.inputs[3].op.type == "Const":
                return float(op.inputs[3].op.get_attr("value").float_val[0])
        return None


def measure(ssd: TfSsd) -> dict[str, Any]:
    """Input size, normalisation (from a black and a white image), anchors and box-coder scales."""
    black = np.zeros((64, 64, 3), np.uint8)
    white = np.full((64, 64, 3), 255, np.uint8)
    pre0, anchors, *scales = ssd.run(black, [NAMES["pre"], NAMES["anchors"], *SCALES])
    pre1 = ssd.run(white, [NAMES["pre"]])[0]
    lo, hi = float(pre0.mean()), float(pre1.mean())  # pre = a * pixel/255 + b  ->  mean = -b/a, std = 1/a
    a, b = hi - lo, lo
    if a <= 0:
        raise ImportError_("the preprocessor does not map pixels increasingly; cannot read its normalisation")
    return {"input_size": (int(pre0.shape[1]), int(pre0.shape[2])), "mean": -b / a, "std": 1.0 / a,
            "anchors": np.asarray(anchors, np.float32), "scales": [float(s) for s in scales]}


def cut_graph(gd: Any, input_size: tuple[int, int]) -> Any:
    """The network alone: a placeholder ``images`` (1, H, W, 3) float in place of the preprocessor's
    output, pruned to the box encodings and class logits."""
    tf = require("tensorflow")
    g = tf.Graph()
    with g.as_default():
        ph = tf.compat.v1.placeholder(tf.float32, [1, *input_size, 3], name="images")
        tf.import_graph_def(gd, name="m", input_map={NAMES["pre"]: ph})
    return tf.compat.v1.graph_util.extract_sub_graph(g.as_graph_def(), ["m/Squeeze", "m/concat_1"])


def to_onnx(cut: Any, m: dict[str, Any], opset: int = 17) -> Any:
    """tf2onnx (NCHW input), then our decoding appended; outputs ``boxes`` and ``scores``."""
    tf2onnx = require("tf2onnx")
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    model, _ = tf2onnx.convert.from_graph_def(cut, input_names=["images:0"], output_names=["m/Squeeze:0",
                                              "m/concat_1:0"], opset=opset, inputs_as_nchw=["images:0"])
    g = model.graph
    g.input[0].name = "images"
    for node in g.node:
        node.input[:] = ["images" if i == "images:0" else i for i in node.input]
    h, w = m["input_size"]
    anc = m["anchors"]  # (A, 4) ymin, xmin, ymax, xmax, normalised
    centre = np.stack([(anc[:, 1] + anc[:, 3]) / 2 * w, (anc[:, 0] + anc[:, 2]) / 2 * h], 1)[None]   # x, y px
    size = np.stack([(anc[:, 3] - anc[:, 1]) * w, (anc[:, 2] - anc[:, 0]) * h], 1)[None]              # w, h px
    sy, sx, sh, sw = m["scales"]
    consts: dict[str, np.ndarray] = {"anc_centre": centre.astype(np.float32), "anc_size": size.astype(np.float32),
              "scale_xy": np.array([sx, sy], np.float32), "scale_wh": np.array([sw, sh], np.float32),
              "idx_xy": np.array([1, 0], np.int64), "idx_wh": np.array([3, 2], np.int64),
              "half": np.array(0.5, np.float32)}
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    enc, logits = g.output[0].name, g.output[1].name
    n = helper.make_node
    g.node.extend([
        # TF's box coder: encodings (ty, tx, th, tw) / scales; centre = t * anchor size + anchor centre,
        # size = exp(t) * anchor size
        n("Gather", [enc, "idx_xy"], ["t_xy"], axis=2), n("Gather", [enc, "idx_wh"], ["t_wh"], axis=2),
        n("Div", ["t_xy", "scale_xy"], ["t_xy_s"]), n("Div", ["t_wh", "scale_wh"], ["t_wh_s"]),
        n("Mul", ["t_xy_s", "anc_size"], ["d_xy"]), n("Add", ["d_xy", "anc_centre"], ["c_xy"]),
        n("Exp", ["t_wh_s"], ["e_wh"]), n("Mul", ["e_wh", "anc_size"], ["s_wh"]),
        n("Mul", ["s_wh", "half"], ["half_wh"]),
        n("Sub", ["c_xy", "half_wh"], ["p1"]), n("Add", ["c_xy", "half_wh"], ["p2"]),
        n("Concat", ["p1", "p2"], ["boxes"], axis=2),
        n("Sigmoid", [logits], ["scores"]),
    ])
    a = anc.shape[0]
    c1 = int(np.prod([d.dim_value for d in g.output[1].type.tensor_type.shape.dim][2:]) or 0)
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, a, 4]),
                     helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, a, c1 or None])])
    onnx.checker.check_model(model)
    return model


def graph_ops(model: Any) -> list[str]:
    return sorted({node.op_type for node in model.graph.node})
