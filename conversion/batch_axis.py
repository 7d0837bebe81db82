"""``edge-app build --dynamic-batch MODEL.onnx``: give an artifact family with a fixed batch of 1 (older
exports, TensorFlow imports) a dynamic batch axis, so that the runtime runs the frames of several cameras
in one call (see ``edge_app.streams``). Exports made from now on have it already.

What changes: the batch dimension of the image input and of every output becomes the symbol "batch"; each
Reshape of an image-dependent tensor whose constant target shape starts with 1 keeps the incoming batch
instead (0 = copy that dimension); inferred shapes are dropped (ONNX Runtime infers them again). Each file
of the family (FP32 and its FP16/INT8 variants beside it) is rewritten only if, on real-looking inputs, a
batch of several gives each input's result from the original file (relative difference ≤ 1e-5);
otherwise nothing is written. The outputs do not change, so what was derived from the family stays
true: the variants' source digest, calibration's thresholds and precision choice are carried over to the
new digests (and recorded: ``extra["batch_axis"]``).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import ArtifactMeta, read_meta, write_atomic
from edge_app.frames.preprocess import Preprocessor
from edge_app.inference.artifacts import recommendation_path, variant_path

from .extras import require
from .seal import seal

TOLERANCE = 1e-5
VARIANTS = ("fp16", "int8", "int8-qdq")


class BatchAxisError(Exception):
    pass


def _constant(model: Any, name: str) -> np.ndarray | None:
    numpy_helper = require("onnx").numpy_helper
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def make_dynamic(model: Any) -> tuple[Any, int]:
    """The model with a dynamic batch axis (a copy) and the number of Reshapes changed."""
    onnx = require("onnx")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    initialisers = {i.name for i in g.initializer}
    image = next(i.name for i in g.input if i.name not in initialisers)
    batched = {image}
    changed = 0
    for node in g.node:  # ONNX keeps nodes in topological order
        if not any(name in batched for name in node.input):
            continue
        batched.update(node.output)
        if node.op_type != "Reshape" or node.input[0] not in batched:
            continue
        shape = _constant(out, node.input[1])
        if shape is None or shape.ndim != 1 or not len(shape) or int(shape[0]) != 1:
            continue
        if any(a.name == "allowzero" and a.i == 1 for a in node.attribute):
            raise BatchAxisError(f"Reshape {node.name!r} has allowzero = 1: its 0 cannot mean 'keep the batch'")
        new = shape.copy()
        new[0] = 0
        name = f"{node.input[1]}__batch{changed}"  # a copy: the constant may also serve weight reshapes
        g.initializer.append(onnx.numpy_helper.from_array(new.astype(shape.dtype), name))
        node.input[1] = name
        changed += 1
    used = {name for node in g.node for name in node.input}
    kept = [i for i in g.initializer if i.name in used]  # the originals only weight reshapes needed, if any
    del g.initializer[:]
    g.initializer.extend(kept)
    for value in [*(i for i in g.input if i.name == image), *g.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    del g.value_info[:]
    return out, changed


def _inputs(meta: ArtifactMeta, count: int = 3) -> list[np.ndarray]:
    from edge_app.datasets.synthetic import make_sample

    rng = np.random.default_rng(0)
    pre = Preprocessor.from_meta(meta)
    return [pre(make_sample(rng, meta.input_size[1], meta.input_size[0]).image)[0] for _ in range(count)]


def check(original: Path, candidate: Path, inputs: list[np.ndarray]) -> float:
    """Worst relative difference between each input run alone in ``original`` and all in one batch in
    ``candidate``; BatchAxisError when the candidate refuses a batch."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ORT's notes on constants it folds away are not ours to print
    one = ort.InferenceSession(str(original), sess_options=opts, providers=["CPUExecutionProvider"])
    many = ort.InferenceSession(str(candidate), sess_options=opts, providers=["CPUExecutionProvider"])
    name = one.get_inputs()[0].name
    try:
        batch = many.run(None, {name: np.concatenate(inputs, axis=0)})
    except Exception as exc:  # ORT's own error types: a shape the graph cannot take
        raise BatchAxisError(f"{original}: a batch of {len(inputs)} fails: {str(exc).splitlines()[0]}") from None
    worst = 0.0
    for i, x in enumerate(inputs):
        for a, b in zip(one.run(None, {name: x}), batch):
            if b.shape[0] != len(inputs):
                raise BatchAxisError(f"{original}: an output has batch {b.shape[0]} for {len(inputs)} inputs")
            scale = float(np.max(np.abs(a))) + 1e-6
            worst = max(worst, float(np.max(np.abs(a - b[i:i + 1]))) / scale)
    return worst


def _carry(path: Path, digests: dict[str, str]) -> bool:
    """Replace old digests by new ones in a JSON file derived from the family (thresholds, precision)."""
    if not path.is_file():
        return False
    data = json.loads(path.read_text())
    if data.get("onnx_sha256") not in digests:
        return False
    data["onnx_sha256"] = digests[data["onnx_sha256"]]
    write_atomic(path, json.dumps(data, indent=1) + "\n")
    return True


def dynamic_family(fp32: Path, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Rewrite ``fp32`` and its variants with a dynamic batch axis (all checked before any is replaced)."""
    onnx = require("onnx")
    fp32 = Path(fp32)
    members = [fp32] + [p for p in (variant_path(fp32, v) for v in VARIANTS) if p.is_file()]
    report: dict[str, Any] = {"files": {}}
    staged: list[tuple[Path, Path, ArtifactMeta, dict[str, Any]]] = []
    try:
        for path in members:
            meta = read_meta(path)
            model, changed = make_dynamic(onnx.load(str(path)))
            tmp = path.with_name(f".{path.name}.batch.tmp")
            onnx.save(model, str(tmp))
            staged.append((path, tmp, meta, {}))
            diff = check(path, tmp, _inputs(meta))
            if not diff <= tolerance:
                raise BatchAxisError(f"{path}: a batch differs from single runs by {diff:.3g} (relative) > {tolerance:g}")
            staged[-1][3].update({"reshapes_changed": changed, "max_rel_diff": diff, "from_sha256": meta.onnx_sha256})
        digests: dict[str, str] = {}
        new_fp32 = ""
        for path, tmp, meta, info in staged:
            extra = {**meta.extra, "batch_axis": info}
            if path != fp32 and "source_onnx_sha256" in extra:
                extra["source_onnx_sha256"] = new_fp32
            sealed = seal(tmp, path, replace(meta, extra=extra))
            digests[meta.onnx_sha256] = sealed.onnx_sha256
            new_fp32 = new_fp32 or sealed.onnx_sha256
            report["files"][path.name] = {**info, "sha256": sealed.onnx_sha256}
    finally:
        for _, tmp, _, _ in staged:
            tmp.unlink(missing_ok=True)
    carried = [p.name for p in (fp32.with_name(f"{fp32.stem}.thresholds.json"), recommendation_path(fp32))
               if _carry(p, digests)]
    report["carried"] = carried
    return report
