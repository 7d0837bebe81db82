"""``edge-app import MODEL --out DIR``: a pretrained model from elsewhere as our ONNX artifact (needs the
``[import]`` extra: tensorflow-cpu, tf2onnx; never on the device).

Reads a TF Object Detection API SSD frozen graph (``.pb``; ``tf_graph``), or the SavedModel folder its TF1
exporter writes (frozen on reading; its ``serving_default`` signature must take the uint8 ``image_tensor``),
or a one-channel TFLite segmenter (``.tflite``; ``tflite``: MediaPipe's person segmenter, its custom
op rewritten; parity against MediaPipe's own runtime, run from a venv that has it, ``--reference-python``).
The artifact carries its own metadata (classes from ``--classes`` or a label map, input size, colour order,
normalisation, score semantics, the source's digest and licence, the parity measured) and is written only
when both parity checks pass: the raw network (ONNX Runtime vs TensorFlow, max abs difference <= ``--tolerance``) and the
detections after our decoder + NMS against TF's own output on real frames (``--frames``: a video or a
folder of images). A detector with a MobileNetV2 feature extractor also leaves its backbone as a
torchvision state dict, ``backbone.npz`` (``backbone``), for ``edge-app train --weights``;
``--backbone-only`` writes just that.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_app.core.artifact import META_KEY, ArtifactMeta, sha256_file
from edge_app.core.boxes import iou_matrix

from edge_app.core.class_names import NAMED
from edge_app.decoders.heads import HEADS

from ..extras import MissingExtra, require
from ..seal import seal
from edge_app.cli.errors import fail

RAW_TOLERANCE = 1e-4
# TF resizes without half-pixel centres (resize_bilinear, align_corners=False), our preprocessing with
# them: a sub-pixel shift that moves scores near the threshold, so agreement, not identity, is asked.
DETECTION_AGREEMENT = 0.9


def label_map(path: Path) -> list[str]:
    """Class names from a TF label map (``item { id: 1 name: 'person' }``, ids from 1), in id order."""
    text = Path(path).read_text()
    items = re.findall(r"item\s*\{([^}]*)\}", text)
    out: dict[int, str] = {}
    for item in items:
        ident = re.search(r"\bid\s*:\s*(\d+)", item)
        name = re.search(r"\b(?:display_name|name)\s*:\s*['\"]([^'\"]+)['\"]", item)
        if ident is None or name is None:
            raise ValueError(f"{path}: an item without id or name: {item.strip()[:60]!r}")
        out[int(ident.group(1))] = name.group(1)
    if not out:
        raise ValueError(f"{path}: no 'item {{ id: N name: ... }}' entries")
    return [out[k] for k in sorted(out)]


def architecture(gd: Any) -> str:
    """"ssdlite-mobilenetv2-tf" and the like, from the graph's own scopes (FeatureExtractor/<net>, and
    depthwise box predictors for SSDLite)."""
    names = [n.name for n in gd.node]
    net = next((n.split("/")[1] for n in names if n.startswith("FeatureExtractor/") and n.count("/") > 1), "net")
    lite = any(n.startswith("BoxPredictor_") and "depthwise" in n for n in names)
    return f"{'ssdlite' if lite else 'ssd'}-{net.lower()}-tf"


def frames(source: Path, count: int) -> list[np.ndarray]:
    """Up to ``count`` BGR frames spread over a video, or the first images of a folder."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
        images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]
        return [im for im in images if im is not None]
    cap = cv2.VideoCapture(str(source))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    out = []
    for k in np.linspace(0, max(0, total - 1), count).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(k))
        ok, frame = cap.read()
        if ok:
            out.append(frame)
    cap.release()
    if not out:
        raise ValueError(f"{source}: no frames read (a video OpenCV can open, or a folder of images)")
    return out


def match(a_boxes: np.ndarray, a_scores: np.ndarray, b_boxes: np.ndarray, b_scores: np.ndarray,
          iou: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matches (i in a, j in b, IoU), highest scores of ``a`` first."""
    if len(a_boxes) == 0 or len(b_boxes) == 0:
        return []
    m = iou_matrix(a_boxes, b_boxes)
    used: set[int] = set()
    out = []
    for i in np.argsort(-a_scores):
        j = next((int(j) for j in np.argsort(-m[i]) if m[i, j] >= iou and int(j) not in used), None)
        if j is not None:
            used.add(j)
            out.append((int(i), j, float(m[i, j])))
    return out


def detection_parity(ssd: Any, onnx_path: Path, images: list[np.ndarray], threshold: float,
                     nms_iou: float) -> dict[str, Any]:
    """Our runtime (preprocessing, ONNX, decoder, NMS) vs the whole TF graph, per frame, at ``threshold``."""
    from edge_app.inference.models import open_artifact

    ours = open_artifact(onnx_path, score_threshold=threshold, nms_iou=nms_iou)
    tf_n = our_n = matched = 0
    ious, dscores, missed_scores = [], [], []
    for bgr in images:
        tb, ts, tc = ssd.detections(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        keep = ts >= threshold
        tb, ts, tc = tb[keep], ts[keep], tc[keep]
        det = ours.predict(bgr).detections
        assert det is not None
        tf_n += len(tb)
        our_n += len(det)
        pairs = match(tb, ts, det.boxes, det.scores)
        pairs = [(i, j, v) for i, j, v in pairs if tc[i] == det.classes[j]]
        matched += len(pairs)
        ious += [v for _, _, v in pairs]
        dscores += [abs(float(ts[i]) - float(det.scores[j])) for i, j, _ in pairs]
        got = {i for i, _, _ in pairs}
        missed_scores += [float(ts[i]) for i in range(len(tb)) if i not in got]
    ours.close()
    return {"frames": len(images), "threshold": threshold, "nms_iou": nms_iou, "tf_detections": tf_n,
            "our_detections": our_n, "matched": matched, "mean_iou": float(np.mean(ious)) if ious else None,
            "max_score_diff": float(np.max(dscores)) if dscores else None,
            "unmatched_tf_scores": sorted(round(s, 3) for s in missed_scores)}


def raw_parity(ssd: Any, onnx_path: Path, images: list[np.ndarray], m: dict[str, Any]) -> float:
    """Max abs difference of boxes and scores before NMS: ONNX Runtime on TF's own preprocessed input vs
    TF's decoded boxes (pixels) and sigmoid scores."""
    import onnxruntime as ort

    from .tf_graph import DECODED, NAMES

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    h, w = m["input_size"]
    worst = 0.0
    for bgr in images:
        pre, logits, decoded = ssd.run(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                                       [NAMES["pre"], NAMES["logits"], DECODED])
        boxes, scores = sess.run(["boxes", "scores"], {"images": pre.transpose(0, 3, 1, 2).astype(np.float32)})
        tf_boxes = decoded.reshape(-1, 4)[:, [1, 0, 3, 2]] * np.array([w, h, w, h], np.float32)
        worst = max(worst, float(np.abs(boxes[0] - tf_boxes).max()) / max(h, w),  # boxes relative to the input
                    float(np.abs(scores - 1 / (1 + np.exp(-logits))).max()))
    return worst


def import_ssd(model: Path, out: Path, classes: list[str], licence: str, frames_from: Path | None,
               count: int = 20, threshold: float = 0.5, tolerance: float = RAW_TOLERANCE,
               backbone: str | None = None) -> dict[str, Any]:
    """The SSD as our artifact; for a MobileNetV2 extractor also its backbone.npz: at ``backbone`` (a path),
    beside the ONNX (None), or not at all ("none")."""
    from .tf_graph import ALLOWED_OPS, TfSsd, cut_graph, graph_ops, load_graph, measure, source_file, to_onnx

    onnx = require("onnx")
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    gd = load_graph(model)  # a frozen .pb or a SavedModel directory
    ssd = TfSsd(gd)
    m = measure(ssd)
    proto = to_onnx(cut_graph(gd, m["input_size"]), m)
    ops = graph_ops(proto)
    foreign = sorted(set(ops) - ALLOWED_OPS)
    if foreign:
        raise ValueError(f"{model}: the imported graph has ops outside the TensorRT-parsable set: {foreign}")
    c1 = proto.graph.output[1].type.tensor_type.shape.dim[2].dim_value
    if len(classes) != c1 - 1:
        raise ValueError(f"{model}: the graph scores {c1 - 1} classes (+ background); --classes/label map "
                         f"names {len(classes)}: {classes}")
    meta = ArtifactMeta(task="detection", classes=tuple(classes), input_size=m["input_size"], input_name="images",
                        color="RGB", mean=(m["mean"],) * 3, std=(m["std"],) * 3, resize="stretch", score="sigmoid",
                        background=True, outputs={"boxes": "boxes", "scores": "scores"},
                        model=architecture(gd),
                        extra={"source": {"file": Path(model).name, "sha256": sha256_file(source_file(model)),
                                          "format": "tensorflow object detection api " + (
                                              "savedmodel (tf1 export)" if Path(model).is_dir() else "frozen graph"),
                                          "licence": licence, "anchors": int(m["anchors"].shape[0]),
                                          "box_coder_scales": m["scales"]},
                               "import": {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
                                          "opset": 17, "ops": ops}})
    out = Path(out)
    final = out if out.suffix == ".onnx" else out / "model.onnx"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, meta.to_json()
        onnx.save(proto, str(tmp))
        images = frames(frames_from, count) if frames_from else []
        if not images:
            raise ValueError("parity needs real frames: --frames VIDEO_OR_FOLDER")
        raw = raw_parity(ssd, tmp, images[:4], m)
        if not raw <= tolerance:
            raise ValueError(f"{model}: ONNX Runtime differs from TensorFlow by {raw:.3g} > {tolerance:g} (raw outputs)")
        nms_iou = ssd.nms_iou() or 0.6
        det = detection_parity(ssd, tmp, images, threshold, nms_iou)
        share = det["matched"] / det["tf_detections"] if det["tf_detections"] else 1.0
        if share < DETECTION_AGREEMENT or (det["mean_iou"] is not None and det["mean_iou"] < 0.9):
            raise ValueError(f"{model}: our decoder + NMS matched {det['matched']} of TF's {det['tf_detections']} "
                             f"detections at score {threshold} (mean IoU {det['mean_iou']}); expected at least "
                             f"{DETECTION_AGREEMENT:.0%} at IoU >= 0.9")
        meta = replace(meta, extra={**meta.extra, "import": {**meta.extra["import"], "parity_raw_max_abs": raw,
                                                             "parity_detections": det}})
        seal(tmp, final, meta)
    finally:
        tmp.unlink(missing_ok=True)
    result = {"onnx": str(final), "classes": classes, "input_size": list(m["input_size"]), "ops": ops,
              "parity_raw_max_abs": raw, "parity_detections": det}
    if "mobilenetv2" in architecture(gd) and backbone != "none":
        result["backbone"] = import_backbone(model, Path(backbone) if backbone else backbone_path(final), gd)
    return result


def backbone_path(onnx_path: Path) -> Path:
    """Where the backbone of an imported detector goes: DIR/backbone.npz beside DIR/model.onnx, else
    NAME.backbone.npz beside NAME.onnx."""
    return onnx_path.with_name("backbone.npz" if onnx_path.name == "model.onnx" else f"{onnx_path.stem}.backbone.npz")


def import_backbone(model: Path, out: Path, gd: Any = None) -> dict[str, Any]:
    """The MobileNetV2 feature extractor as a torchvision state dict (``backbone``), for
    ``edge-app train --weights``; its mapping report (.json) beside it. ``gd``: the graph, if read."""
    from .backbone import map_backbone, write_backbone
    from .tf_graph import load_graph

    state, report = map_backbone(gd if gd is not None else load_graph(model), str(model))
    write_backbone(state, report, out)
    return {"npz": str(out), "mapped": len(report.mapped), "unused": len(report.unused),
            "outside_feature_extractor": report.outside, "unfilled": len(report.unfilled), "summary": report.summary()}


def segmenter_parity(onnx_path: Path, model: Path, images: list[np.ndarray], size: tuple[int, int],
                     reference_python: str) -> float:
    """Max abs difference of the foreground probability: ONNX Runtime vs MediaPipe's own runtime (run by
    ``reference_python``, a venv with mediapipe) on the same input tensors (frames resized to the input)."""
    import subprocess
    import tempfile

    import onnxruntime as ort

    h, w = size
    rgb = np.stack([cv2.cvtColor(cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
                    for im in images])
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ours = []
    for x in rgb:
        logits = sess.run(["logits"], {"images": (x.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]})[0][0]
        e = np.exp(logits - logits.max(0))
        ours.append(e[1] / e.sum(0))  # softmax of [0, z] = sigmoid(z)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
        np.save(src, rgb)
        script = Path(__file__).with_name("mediapipe_reference.py")
        r = subprocess.run([reference_python, str(script), str(model), str(src), str(dst)], capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0:
            raise ValueError(f"the MediaPipe reference ({reference_python}) failed: {r.stderr.strip()[-500:]}")
        ref = np.load(dst)
    return float(np.abs(np.stack(ours) - ref).max())


def import_segmenter(model: Path, out: Path, classes: list[str], licence: str, frames_from: Path | None,
                     count: int, reference_python: str | None, tolerance: float = RAW_TOLERANCE) -> dict[str, Any]:
    from .tflite import to_onnx

    onnx = require("onnx")
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    from .tf_graph import ALLOWED_OPS

    proto, info = to_onnx(model)
    foreign = sorted(set(info["ops"]) - ALLOWED_OPS - {"AveragePool", "ConvTranspose", "HardSwish", "Resize"})
    if foreign:
        raise ValueError(f"{model}: the imported graph has ops outside the TensorRT-parsable set: {foreign}")
    if len(classes) != 1:
        raise ValueError(f"{model}: a one-channel segmenter: name its foreground class (one name), got {classes}")
    meta = ArtifactMeta(task="segmentation", classes=("background", classes[0]), input_size=info["input_size"],
                        input_name="images", color="RGB", mean=(0.0,) * 3, std=(1.0,) * 3, resize="stretch",
                        score="softmax", outputs={"logits": "logits"}, model=f"tflite-{Path(model).stem}",
                        extra={"source": {"file": Path(model).name, "sha256": sha256_file(Path(model)),
                                          "format": "tflite", "licence": licence,
                                          "rewritten_custom_ops": info["rewritten"]},
                               "import": {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__, "opset": 17,
                                          "ops": info["ops"]}})
    final = out if out.suffix == ".onnx" else out / "model.onnx"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        onnx.save(proto, str(tmp))
        if reference_python is None:
            raise ValueError("a MediaPipe TFLite model's parity needs MediaPipe's runtime: --reference-python "
                             "var/venvs/mediapipe/bin/python (make import-env makes it)")
        images = frames(frames_from, count) if frames_from else []
        if not images:
            raise ValueError("parity needs real frames: --frames VIDEO_OR_FOLDER")
        diff = segmenter_parity(tmp, model, images, info["input_size"], reference_python)
        if not diff <= tolerance:
            raise ValueError(f"{model}: ONNX Runtime differs from MediaPipe by {diff:.3g} > {tolerance:g}")
        meta = replace(meta, extra={**meta.extra, "import": {**meta.extra["import"], "parity_max_abs": diff,
                                                             "parity_frames": len(images),
                                                             "parity_reference": "mediapipe tasks ImageSegmenter"}})
        seal(tmp, final, meta)
    finally:
        tmp.unlink(missing_ok=True)
    return {"onnx": str(final), "classes": list(meta.classes), "input_size": list(info["input_size"]),
            "ops": info["ops"], "parity_max_abs": diff}


def import_detector(model: Path, a: argparse.Namespace) -> dict[str, Any]:
    """A TF.js model.json or an ONNX detector (``importers``), classes from --classes or --names."""
    if sum(bool(x) for x in (a.classes, a.names, a.label_map)) > 1:
        raise ValueError("name the classes with one of --classes, --names or --label-map")
    classes = ([c.strip() for c in a.classes.split(",")] if a.classes else list(NAMED[a.names]) if a.names
               else label_map(Path(a.label_map)) if a.label_map else None)
    pre: dict[str, Any] = {}
    for key in ("mean", "std"):
        if getattr(a, key):
            try:
                values = tuple(float(v) for v in getattr(a, key).split(","))
            except ValueError:
                values = ()
            if len(values) != 3:
                raise ValueError(f"--{key} {getattr(a, key)!r}: expected three numbers (0..255 scale), comma-separated")
            pre[key] = values
    pre.update({k: getattr(a, k) for k in ("color", "resize") if getattr(a, k)})
    images = frames(Path(a.frames), a.parity_frames) if a.frames else []
    if model.suffix == ".json":
        from .tfjs import import_tfjs
        if classes is None:
            raise ValueError("name the classes with --classes a,b,... or --names coco")
        return import_tfjs(model, Path(a.out), classes, images, licence=a.licence if a.licence != "unknown" else "",
                           head=a.head, preprocessing=pre)
    from .onnx_model import import_onnx
    return import_onnx(model, Path(a.out), classes, images, licence=a.licence, head=a.head, preprocessing=pre)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app import", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a TF Object Detection API SSD frozen graph (.pb) or TF1 SavedModel folder, a "
                   "one-channel TFLite segmenter (.tflite, MediaPipe's custom transposed convolution rewritten), a "
                   "TF.js graph model (model.json + shards; parity against TensorFlow.js) or an ONNX detector "
                   "(.onnx: its head family read from the output shapes)")
    p.add_argument("--out", required=True, help="the artifact: NAME.onnx (its NAME.json beside it), or a folder "
                   "(model.onnx + model.json)")
    p.add_argument("--classes", help="comma-separated class names, in the graph's order (no background)")
    p.add_argument("--label-map", help="a TF label map (.pbtxt) instead of --classes")
    p.add_argument("--names", choices=sorted(NAMED), help="a well-known class list instead of --classes (coco: the 80)")
    p.add_argument("--head", default="auto", choices=["auto", *sorted(HEADS)],
                   help="the detector's head family (.json, .onnx); auto: read from the output shapes")
    p.add_argument("--color", choices=("RGB", "BGR"), help="the network's channel order (.json/.onnx, when no preset "
                   "or file metadata says)")
    p.add_argument("--mean", help="per-channel mean on 0..255, e.g. 103.53,116.28,123.675")
    p.add_argument("--std", help="per-channel std on 0..255, e.g. 57.375,57.12,58.395")
    p.add_argument("--resize", choices=("stretch", "letterbox"))
    p.add_argument("--licence", default="unknown", help="the source model's licence, kept in the metadata")
    p.add_argument("--frames", help="real frames for the parity check: a video or a folder of images")
    p.add_argument("--parity-frames", type=int, default=20)
    p.add_argument("--threshold", type=float, default=0.5, help="score threshold of the detection parity")
    p.add_argument("--backbone-only", action="store_true", help="for a .pb with a MobileNetV2 extractor: write only "
                   "its backbone as a torchvision state dict (OUT/backbone.npz or OUT itself if it ends in .npz; "
                   "no ONNX, no --classes, no --frames). A full import writes it beside model.onnx anyway")
    p.add_argument("--backbone", help="where a MobileNetV2 detector's backbone.npz goes (default: beside the ONNX; "
                   "'none': not written)")
    p.add_argument("--reference-python", help="for .tflite: a Python with mediapipe, MediaPipe's runtime being the "
                   "parity reference (default: var/venvs/mediapipe/bin/python when it exists)")
    a = p.parse_args(argv)
    model = Path(a.model)
    try:
        if not model.exists():
            raise ValueError(f"{model}: not found")
        if model.is_dir() and not (model / "saved_model.pb").is_file():
            raise ValueError(f"{model}: a folder but not a SavedModel (no saved_model.pb in it)")
        if model.is_file() and model.suffix not in (".pb", ".tflite", ".json", ".onnx"):
            raise ValueError(f"{model}: expected a TF frozen graph (.pb), a TF1 Object Detection API SavedModel "
                             "folder, a TFLite model (.tflite), a TF.js model.json or an ONNX detector (.onnx)")
        if a.backbone_only:
            if model.suffix == ".tflite":
                raise ValueError(f"{model}: --backbone-only reads a TF frozen graph (.pb) or SavedModel folder")
            out = Path(a.out)
            print(json.dumps(import_backbone(model, out if out.suffix == ".npz" else out / "backbone.npz")))
            return 0
        if model.suffix in (".json", ".onnx"):
            print(json.dumps(import_detector(model, a)))
            return 0
        if bool(a.classes) == bool(a.label_map):
            raise ValueError("name the classes with one of --classes or --label-map")
        classes = [c.strip() for c in a.classes.split(",")] if a.classes else label_map(Path(a.label_map))
        if model.suffix == ".tflite":
            ref = a.reference_python or next((str(p) for p in [Path("var/venvs/mediapipe/bin/python")] if p.is_file()),
                                             None)
            result = import_segmenter(model, Path(a.out), classes, a.licence, Path(a.frames) if a.frames else None,
                                      a.parity_frames, ref)
        else:
            result = import_ssd(model, Path(a.out), classes, a.licence, Path(a.frames) if a.frames else None,
                                a.parity_frames, a.threshold, backbone=a.backbone)
    except (MissingExtra, ValueError, OSError) as exc:
        return fail("import", f"{exc}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
