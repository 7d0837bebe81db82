"""TF.js graph models (``model.json`` + weight shards) as our artifact: converted by tf2onnx (the
``[import]`` extra), cleaned into a plain static graph (``graph``), the head family read from the output
shapes (``edge_app.decoders.heads.layout``), and refused unless ONNX Runtime reproduces TensorFlow.js
itself — run by Node (its WebAssembly backend, ``tfjs_reference.js``) on the same real frames — within
the tolerance.

What a model.json does not say (colour order, normalisation, resize) comes from a preset for the models
we know (NanoDet, by the ``generatedBy`` its converter wrote) or from the command line.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import ArtifactMeta, sha256_file
from edge_app.frames.preprocess import Preprocessor
from edge_app.decoders.heads.layout import detect

from ..extras import require
from ..seal import seal
from . import graph

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "var" / "node" / "node_modules"
DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "float16": 2, "uint8": 1, "uint16": 2, "int8": 1, "int16": 2,
               "complex64": 8, "string": 0}
# NanoDet's own preprocessing (RangiLyu/nanodet configs: BGR, these mean/std on 0..255, keep ratio, centred,
# black border), verified on real labelled frames (../shared/notes/pretrained.md), and its post-processing.
PRESETS: dict[str, dict[str, Any]] = {"https://github.com/RangiLyu/nanodet": {
    "model": "nanodet-tfjs", "color": "BGR", "mean": (103.53, 116.28, 123.675), "std": (57.375, 57.12, 58.395),
    "resize": "letterbox", "pad_value": 0, "licence": "Apache-2.0 (NanoDet, RangiLyu/nanodet)",
    "postprocess": {"score": 0.05, "nms_iou": 0.6, "top_k_per_level": 1000, "max_detections": 100}}}


class TfjsError(ValueError):
    pass


def per_channel(values: Any) -> tuple[float, float, float]:
    """Three values on the 0..255 scale -> our metadata's scale (applied to pixel / 255)."""
    a, b, c = (float(v) / 255 for v in values)
    return (a, b, c)


def read_model_json(path: Path) -> dict[str, Any]:
    """The model.json, checked: a graph model whose weight shards are all there and as long as the manifest
    says. TfjsError naming the file (and shard) and what was expected."""
    try:
        model = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise TfjsError(f"{path}: unreadable ({exc})") from None
    except json.JSONDecodeError as exc:
        raise TfjsError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}): expected a TF.js model.json") from None
    if not isinstance(model, dict) or "modelTopology" not in model or "weightsManifest" not in model:
        raise TfjsError(f"{path}: expected a TF.js model.json with 'modelTopology' and 'weightsManifest'")
    if model.get("format") != "graph-model":
        raise TfjsError(f"{path}: format {model.get('format')!r}: expected 'graph-model' (a TF.js layers model "
                        "is not supported: convert it with tensorflowjs_converter --output_format tfjs_graph_model)")
    for group in model["weightsManifest"]:
        need = 0
        for w in group.get("weights", []):
            dtype = (w.get("quantization") or {}).get("dtype", w.get("dtype", "float32"))
            need += int(np.prod(w.get("shape", []), dtype=np.int64)) * DTYPE_BYTES.get(dtype, 4)
        have = 0
        for shard in group.get("paths", []):
            file = Path(path).parent / shard
            if not file.is_file():
                raise TfjsError(f"{path}: weight shard {shard} is missing (expected {file})")
            have += file.stat().st_size
        if have != need:
            raise TfjsError(f"{path}: weight shards {group.get('paths')} hold {have} bytes; the manifest's weights "
                            f"need {need} (a truncated or wrong shard)")
    return model


def convert(path: Path, work: Path, opset: int = 13) -> Any:
    """tf2onnx's TF.js reader, run as its own command (it logs a lot and keeps global state)."""
    require("tf2onnx")
    out = work / "raw.onnx"
    r = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(path), "--output", str(out),
                        "--opset", str(opset)], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0 or not out.is_file():
        raise TfjsError(f"{path}: tf2onnx could not convert it: {r.stderr.strip()[-800:]}")
    return require("onnx").load(str(out))


def tfjs_outputs(model_json: Path, input_name: str, inputs: list[np.ndarray], node: str = "node") -> list[dict[str, np.ndarray]]:
    """TensorFlow.js's own outputs for each input (N, 3, h, w) float32: the parity reference."""
    script = Path(__file__).with_name("tfjs_reference.js")
    if shutil.which(node) is None:
        raise TfjsError("the TF.js parity reference needs Node.js: apt-get install nodejs npm (make import-env)")
    if not (NODE_MODULES / "@tensorflow" / "tfjs").is_dir():
        raise TfjsError(f"the TF.js parity reference needs @tensorflow/tfjs in {NODE_MODULES} (make import-env)")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        runs = []
        for k, x in enumerate(inputs):
            np.ascontiguousarray(x, np.float32).tofile(d / f"x{k}.f32")
            runs.append({"name": input_name, "shape": list(x.shape), "file": f"x{k}.f32"})
        (d / "inputs.json").write_text(json.dumps(runs))
        r = subprocess.run([node, str(script), str(model_json), str(d), str(d)], capture_output=True, text=True,
                           timeout=1800, env={**os.environ, "NODE_PATH": str(NODE_MODULES)})
        if r.returncode != 0:
            raise TfjsError(f"TensorFlow.js could not run {model_json}: {r.stderr.strip()[-800:]}")
        result = json.loads((d / "outputs.json").read_text())
        return [{name: np.fromfile(d / v["file"], np.float32).reshape(v["shape"]) for name, v in run.items()}
                for run in result["runs"]]


def import_tfjs(model_json: Path, out: Path, classes: list[str], images: list[np.ndarray], *, licence: str = "",
                head: str = "auto", preprocessing: dict[str, Any] | None = None, tolerance: float = 1e-4,
                source: dict[str, Any] | None = None) -> dict[str, Any]:
    """model.json -> OUT (DIR/model.onnx or NAME.onnx + sidecar), written only when parity holds."""
    model_json = Path(model_json)
    spec = read_model_json(model_json)  # a broken model is named before anything is converted
    onnx = require("onnx")
    tf2onnx = require("tf2onnx")
    from ..batch_axis import make_dynamic

    preset: dict[str, Any] = PRESETS.get(str(spec.get("generatedBy", "")), {})
    pre: dict[str, Any] = {**{k: preset[k] for k in ("color", "mean", "std", "resize", "pad_value") if k in preset},
           **(preprocessing or {})}
    missing = [k for k in ("color", "mean", "std", "resize") if k not in pre]
    if missing:
        raise TfjsError(f"{model_json}: its preprocessing is not known here (generatedBy {spec.get('generatedBy')!r}); "
                        f"give {', '.join('--' + k for k in missing)}")
    sig = spec.get("signature", {}).get("inputs", {})
    if len(sig) != 1:
        raise TfjsError(f"{model_json}: expected one image input, the signature has {sorted(sig)}")
    (tf_input, info), = sig.items()
    dims = [int(d.get("size", -1)) for d in info.get("tensorShape", {}).get("dim", [])]
    if len(dims) != 4 or dims[1] != 3:
        raise TfjsError(f"{model_json}: input {tf_input} of shape {dims}: expected NCHW (1, 3, H, W)")
    size = (dims[2], dims[3])
    with tempfile.TemporaryDirectory() as tmp:
        proto = convert(model_json, Path(tmp))
    folded = graph.fold_constants(proto)
    pads = graph.fold_pads(proto)
    graph.rename(proto, {proto.graph.input[0].name: "images"})
    proto = graph.clean_shapes(proto)
    shapes = {o.name: tuple(d.dim_value if d.HasField("dim_value") else -1 for d in o.type.tensor_type.shape.dim)
              for o in proto.graph.output}
    lay = detect(shapes, size, len(classes), head)
    if lay.classes and lay.classes != len(classes):
        raise TfjsError(f"{model_json}: the model scores {lay.classes} classes; --classes/--names give {len(classes)}")
    params = dict(lay.params)
    levels = params.pop("levels", None)
    if levels:  # one output per level and role -> one per role, levels in stride order
        origin = {role: [lv[role] for lv in levels] for role in ("scores", "bins")}
        graph.concat_outputs(proto, origin)
    else:
        origin = {role: [name] for role, name in lay.outputs.items()}
        graph.rename(proto, {name: role for role, name in lay.outputs.items()})
    roles = {role: role for role in origin}
    if lay.head == "gfl":
        params["score"] = "sigmoid" if "Sigmoid" in graph.ops(proto) else "logits"
    proto, _ = make_dynamic(proto)  # a frame's tiles, or several cameras' frames, in one call
    proto = graph.clean_shapes(proto)
    ops = graph.ops(proto)
    meta = ArtifactMeta(
        task="detection", classes=tuple(classes), input_size=size, input_name="images", color=pre["color"],
        mean=per_channel(pre["mean"]), std=per_channel(pre["std"]),
        resize=pre["resize"], pad_value=int(pre.get("pad_value", 114)), score="sigmoid", background=False,
        outputs=roles, model=preset.get("model", f"tfjs-{model_json.stem}"), head=lay.head, head_params=params,
        extra={"source": {"file": model_json.name, "sha256": sha256_file(model_json),
                          "shards": {p: sha256_file(model_json.parent / p) for g in spec["weightsManifest"]
                                     for p in g["paths"]},
                          "format": "tfjs graph model", "generated_by": spec.get("generatedBy"),
                          "converted_by": spec.get("convertedBy"), "licence": licence or preset.get("licence", "unknown"),
                          **(source or {})},
               "head_reason": lay.reason, "upstream_postprocess": preset.get("postprocess"),
               "import": {"tf2onnx": tf2onnx.__version__, "opset": 13, "ops": ops, "folded_constants": folded,
                          "folded_pads": pads}})
    final = out if out.suffix == ".onnx" else out / "model.onnx"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = final.with_name(f".{final.name}.tmp")
    try:
        onnx.save(proto, str(tmp_path))
        if not images:
            raise TfjsError("parity needs real frames: --frames VIDEO_OR_FOLDER")
        parity = raw_parity(tmp_path, meta, model_json, tf_input, images, origin)
        if not parity["max_abs"] <= tolerance:
            raise TfjsError(f"{model_json}: ONNX Runtime differs from TensorFlow.js by {parity['max_abs']:.3g} > "
                            f"{tolerance:g} (raw outputs, {parity['frames']} frames)")
        meta = replace(meta, extra={**meta.extra, "import": {**meta.extra["import"], "parity": parity}})
        seal(tmp_path, final, meta)
    finally:
        tmp_path.unlink(missing_ok=True)
    return {"onnx": str(final), "head": lay.head, "why": lay.reason, "classes": len(classes), "input_size": list(size),
            "ops": ops, "folded_constants": folded, "folded_pads": pads, "parity": parity}


def raw_parity(onnx_path: Path, meta: ArtifactMeta, model_json: Path, tf_input: str, images: list[np.ndarray],
               origin: dict[str, list[str]]) -> dict[str, Any]:
    """ONNX Runtime (all frames in one batch: the dynamic axis is checked too) vs TensorFlow.js (frame by
    frame, the original graph) on the same preprocessed real frames: max abs difference per output;
    ``origin``: each of our outputs' TF.js outputs (several: concatenated levels)."""
    import onnxruntime as ort

    pre = Preprocessor.from_meta(meta)
    xs = [pre(im)[0] for im in images]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ours = dict(zip(names, sess.run(None, {"images": np.concatenate(xs)})))
    refs = tfjs_outputs(model_json, tf_input, xs)
    worst: dict[str, float] = {}
    for k, ref in enumerate(refs):
        ref = {n.split(":")[0]: v for n, v in ref.items()}
        for role in names:
            expected = np.concatenate([ref[name.split(":")[0]] for name in origin[role]], axis=1)
            worst[role] = max(worst.get(role, 0.0), float(np.abs(ours[role][k:k + 1] - expected).max()))
    return {"reference": "TensorFlow.js 4.22 (wasm backend, Node)", "frames": len(images), "batched": True,
            "max_abs": max(worst.values()), "per_output": worst}
