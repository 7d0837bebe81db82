"""An ONNX detector made elsewhere (a user's YOLO / RT-DETR / NanoDet export) as our artifact: the head
family read from its output shapes (``edge_app.decoders.heads.layout``; ``--head`` settles an ambiguity),
its classes from ``--classes`` / ``--names`` or the file's own metadata (ultralytics writes ``names``),
its preprocessing from the producer's conventions or the command line; tensors renamed to ours, a dynamic
batch axis where the graph allows it. The graph itself is not changed otherwise, so the parity reference
is the file as given, run by ONNX Runtime on the same real frames.
"""
from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import ArtifactMeta, sha256_file
from edge_app.frames.preprocess import Preprocessor
from edge_app.decoders.heads.layout import detect

from ..extras import require
from ..seal import seal
from . import graph, parsers
from .tfjs import per_channel

# ultralytics' predictors: RGB on 0..1, letterbox with grey (114) borders; RT-DETR's stretches the image
ULTRALYTICS = {"color": "RGB", "mean": (0.0, 0.0, 0.0), "std": (255.0, 255.0, 255.0), "resize": "letterbox",
               "pad_value": 114}


class OnnxImportError(ValueError):
    pass


def file_metadata(proto: Any) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def names_of(props: dict[str, str]) -> list[str] | None:
    """Class names an exporter left in the file (ultralytics: ``names`` = "{0: 'person', ...}")."""
    raw = props.get("names")
    if not raw:
        return None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, dict):
        return [str(value[k]) for k in sorted(value)]
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else None


def import_onnx(model: Path, out: Path, classes: list[str] | None, images: list[np.ndarray], *, licence: str = "unknown",
                head: str = "auto", preprocessing: dict[str, Any] | None = None, tolerance: float = 1e-4) -> dict[str, Any]:
    onnx = require("onnx")
    from ..batch_axis import make_dynamic

    model = Path(model)
    try:
        proto = onnx.load(str(model))
    except Exception as exc:  # onnx raises DecodeError and friends for a corrupt file
        raise OnnxImportError(f"{model}: not a loadable ONNX model ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    props = file_metadata(proto)
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise OnnxImportError(f"{model}: expected one image input, found {[i.name for i in inputs]}")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] != 3 or min(dims[2:]) < 1:
        raise OnnxImportError(f"{model}: input {inputs[0].name} of shape {dims}: expected (N, 3, H, W) with a fixed H, W")
    size = (dims[2], dims[3])
    own = names_of(props)
    if classes is not None and own is not None and len(own) != len(classes):
        raise OnnxImportError(f"{model}: the file names {len(own)} classes ({', '.join(own[:8])}...); --classes/--names "
                              f"give {len(classes)}")
    classes = classes or own
    shapes = {o.name: tuple(d.dim_value if d.HasField("dim_value") else -1 for d in o.type.tensor_type.shape.dim)
              for o in proto.graph.output}
    if any(d < 1 for s in shapes.values() for d in s[1:]):
        shapes = _measured_shapes(model, shapes)
    lay = detect(shapes, size, len(classes) if classes else None, head)
    if classes is None:
        raise OnnxImportError(f"{model}: a {lay.head} head ({lay.reason}); name its classes with --classes or --names")
    if lay.classes and lay.classes != len(classes) and not (lay.head in ("ssd", "detr") and lay.classes == len(classes) + 1):
        raise OnnxImportError(f"{model}: the model scores {lay.classes} classes; --classes/--names give {len(classes)}: "
                              f"{', '.join(classes[:8])}{'...' if len(classes) > 8 else ''}")
    ultralytics = props.get("author", "").lower().startswith("ultralytics")
    pre = {**(ULTRALYTICS if ultralytics else {}), **(preprocessing or {})}
    if ultralytics and lay.head == "detr" and "resize" not in (preprocessing or {}):
        pre["resize"] = "stretch"  # ultralytics' RT-DETR predictor stretches (scale_fill) instead of letterboxing
    missing = [k for k in ("color", "mean", "std", "resize") if k not in pre]
    if missing:
        raise OnnxImportError(f"{model}: its preprocessing is not in the file; give {', '.join('--' + k for k in missing)}")
    graph.rename(proto, {inputs[0].name: "images", **{name: role for role, name in lay.outputs.items()}})
    cleaned = parsers.clean(proto)  # what TensorRT's parser and OpenVINO's frontend take: constants folded
    background = lay.head == "ssd" and lay.classes == len(classes) + 1
    meta = ArtifactMeta(
        task="detection", classes=tuple(classes), input_size=size, input_name="images", color=pre["color"],
        mean=per_channel(pre["mean"]), std=per_channel(pre["std"]),
        resize=pre["resize"], pad_value=int(pre.get("pad_value", 114)), score="sigmoid", background=background,
        outputs={role: role for role in lay.outputs}, model=f"onnx-{model.stem}", head=lay.head, head_params=lay.params,
        extra={"source": {"file": model.name, "sha256": sha256_file(model), "format": "onnx", "licence": licence,
                          "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
                          "metadata": {k: v for k, v in props.items() if len(v) < 2000}},
               "head_reason": lay.reason, "import": {"ops": graph.ops(proto), **cleaned}})
    final = out if out.suffix == ".onnx" else out / "model.onnx"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        if not images:
            raise OnnxImportError("parity needs real frames: --frames VIDEO_OR_FOLDER")
        pre_fn = Preprocessor.from_meta(meta)
        xs = [pre_fn(im)[0] for im in images]
        batch = "fixed"
        if dims[0] == 1:
            dynamic, _ = make_dynamic(proto)
            onnx.save(dynamic, str(tmp))
            if _parity(model, tmp, xs[:3], batched=True) <= tolerance:
                proto, batch = dynamic, "dynamic"
            # else (or it fails): e.g. a transformer that bakes the batch into its shapes: frames and tiles
            # then go one by one
        else:
            batch = "dynamic"
        onnx.save(proto, str(tmp))
        diff = _parity(model, tmp, xs)
        if not diff <= tolerance:
            raise OnnxImportError(f"{model}: the imported graph differs from the file by {diff:.3g} > {tolerance:g}")
        meta = replace(meta, extra={**meta.extra, "import": {**meta.extra["import"], "batch": batch,
                                                             "openvino": parsers.openvino_accepts(tmp),
                                                             "parity": {"reference": "the file itself, ONNX Runtime",
                                                                        "frames": len(xs), "max_abs": diff}}})
        seal(tmp, final, meta)
    finally:
        tmp.unlink(missing_ok=True)
    return {"onnx": str(final), "head": lay.head, "why": lay.reason, "classes": len(classes), "input_size": list(size),
            "batch": batch, "parity_max_abs": diff, "openvino": meta.extra["import"]["openvino"]}


def _measured_shapes(model: Path, declared: dict[str, tuple]) -> dict[str, tuple]:
    """Output shapes the file leaves symbolic (ultralytics' RT-DETR export declares its top-k output
    [-1, -1, 6]) measured by running it once on a blank batch of one: the layout rules need numbers."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        i = sess.get_inputs()[0]
        x = np.zeros([1 if not isinstance(d, int) or d < 1 else d for d in i.shape], np.float32)
        outs = sess.run(None, {i.name: x})
    except Exception as exc:  # ORT's own error types
        raise OnnxImportError(f"{model}: output shapes {declared} are not all fixed, and running the file once to "
                              f"measure them failed ({str(exc).splitlines()[0]})") from None
    return {o.name: tuple(v.shape) for o, v in zip(sess.get_outputs(), outs)}


def _parity(original: Path, candidate: Path, xs: list[np.ndarray], batched: bool = False) -> float:
    """Max abs difference of every output: the file as given, image by image, vs the candidate (image by
    image, or all in one batch); inf when the candidate cannot run so."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    a = ort.InferenceSession(str(original), sess_options=opts, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(candidate), sess_options=opts, providers=["CPUExecutionProvider"])
    try:
        theirs = [b.run(None, {"images": np.concatenate(xs)})] if batched else [b.run(None, {"images": x}) for x in xs]
    except Exception:  # ORT's own error types: a batch the graph cannot take
        return float("inf")
    worst = 0.0
    for k, x in enumerate(xs):
        mine = a.run(None, {a.get_inputs()[0].name: x})
        other = [v[k:k + 1] for v in theirs[0]] if batched else theirs[k]
        for u, v in zip(mine, other):
            if u.shape != v.shape:
                return float("inf")
            worst = max(worst, float(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64)).max()) if u.size else 0.0)
    return worst

