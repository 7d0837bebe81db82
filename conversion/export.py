"""``edge-app export``: a training checkpoint -> one ONNX file (opset 17) that describes itself.

Detection graphs output decoded boxes and per-class scores (NMS stays in the runtime); segmentation
graphs output logits. Metadata goes into ``metadata_props['edge_vision']`` and a JSON sidecar (with the
ONNX sha256). A parity check runs the ONNX in ONNX Runtime against torch on real images and fails
the export above the tolerance.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import ArtifactMeta
from edge_app.frames.preprocess import Preprocessor

from .datasets import Source
from .seal import seal
from .extras import require
from .models import build_model, model_kwargs

torch = require("torch")

OPSET = 17
PARITY_TOLERANCE = 1e-4


class ExportError(Exception):
    pass


def load_checkpoint(path: Path) -> tuple[Any, ArtifactMeta, dict[str, Any]]:
    """(model in eval mode, its metadata, the checkpoint dict) from a file written by train."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ck, dict) or not {"model", "meta", "config"} <= set(ck):
        raise ExportError(f"{path}: not an edge-vision training checkpoint (needs model, meta, config)")
    meta = ArtifactMeta.from_dict(ck["meta"], str(path))
    cfg = ck["config"]
    n = meta.num_classes + 1 if meta.task == "detection" else meta.num_classes
    model = build_model(cfg["model"], n, **model_kwargs(cfg))
    model.load_state_dict(ck["model"])
    return model.eval(), meta, ck


def export_graph(model: Any, meta: ArtifactMeta) -> Any:
    """The module that is exported: SSD wrapped to decoded boxes + scores; segmenters as they are."""
    if meta.task == "detection":
        from .models.ssd import SSDExport
        return SSDExport(model).eval()
    return model.eval()


def _parity_inputs(meta: ArtifactMeta, source: Source | None, count: int) -> list[np.ndarray]:
    pre = Preprocessor.from_meta(meta)
    if source is not None and len(source):
        idx = np.linspace(0, len(source) - 1, min(count, len(source))).astype(int)
        return [pre(source.item(int(i), with_mask=meta.task == "segmentation").image)[0] for i in idx]
    from edge_app.datasets.synthetic import make_sample
    rng = np.random.default_rng(0)
    return [pre(make_sample(rng, meta.input_size[1], meta.input_size[0]).image)[0] for _ in range(count)]


def parity(graph: Any, onnx_path: Path, meta: ArtifactMeta, inputs: list[np.ndarray]) -> float:
    """Max |ORT - torch| over all outputs and inputs. Box outputs are compared in units of the input
    width (a 1e-4 tolerance on pixel coordinates up to 320 would judge float32 rounding, not the graph)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            ours = graph(torch.from_numpy(x))
            ours = ours if isinstance(ours, tuple) else (ours,)
            names = list(meta.outputs.values())
            theirs = sess.run(names, {meta.input_name: x})
            for name, a, b in zip(names, ours, theirs):
                scale = float(meta.input_size[1]) if name == meta.outputs.get("boxes") else 1.0
                worst = max(worst, float(np.max(np.abs(a.numpy() - b))) / scale)
        if len(inputs) > 1:  # the batch axis: all inputs in one call give each input's own torch outputs
            batched = sess.run(names, {meta.input_name: np.concatenate(inputs, axis=0)})
            for i, x in enumerate(inputs):
                ours = graph(torch.from_numpy(x))
                ours = ours if isinstance(ours, tuple) else (ours,)
                for name, a, b in zip(names, ours, batched):
                    scale = float(meta.input_size[1]) if name == meta.outputs.get("boxes") else 1.0
                    worst = max(worst, float(np.max(np.abs(a.numpy() - b[i:i + 1]))) / scale)
    return worst


def export_checkpoint(ckpt: Path, onnx_path: Path, source: Source | None = None, parity_images: int = 4,
                      tolerance: float = PARITY_TOLERANCE) -> dict[str, Any]:
    """Export, embed metadata, check parity; the ONNX and its sidecar appear atomically or not at all."""
    require("onnx")  # the extra's error, before any work
    model, meta, ck = load_checkpoint(Path(ckpt))
    graph = export_graph(model, meta)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = onnx_path.with_name(f".{onnx_path.name}.tmp")
    dummy = torch.zeros(1, 3, *meta.input_size)
    with warnings.catch_warnings():
        # dynamo=False on purpose: measured here, dynamo=True gave opset 18 and external data files.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(graph, (dummy,), str(tmp), opset_version=OPSET, dynamo=False,
                          input_names=[meta.input_name], output_names=list(meta.outputs.values()),
                          # a dynamic batch axis: the runtime runs the frames of several cameras in one call
                          dynamic_axes={n: {0: "batch"} for n in [meta.input_name, *meta.outputs.values()]},
                          do_constant_folding=True)
    state = ck.get("state", {})
    extra = {**meta.extra, "training": {"config": ck["config"], "epochs": state.get("epoch"),
                                        "history": state.get("history", [])},
             "validation": state.get("best_metrics")}
    meta = replace(meta, extra=extra)
    try:
        diff = parity(graph, tmp, meta, _parity_inputs(meta, source, parity_images))
        if not diff <= tolerance:
            raise ExportError(f"{onnx_path}: ONNX Runtime differs from torch by {diff:.3g} > {tolerance:g}")
        meta = replace(meta, extra={**meta.extra, "export": {"opset": OPSET, "parity_max_abs_diff": diff,
                                                             "parity_images": parity_images}})
        meta = seal(tmp, onnx_path, meta)
    finally:
        tmp.unlink(missing_ok=True)
    return {"onnx": str(onnx_path), "parity_max_abs_diff": diff, "sha256": meta.onnx_sha256}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app export", description=__doc__)
    p.add_argument("checkpoint", help="best.pt / last.pt written by edge-app train")
    p.add_argument("--out", help="ONNX path (default: model.onnx beside the checkpoint)")
    p.add_argument("--data", help="images for the parity check (a dataset path); default synthetic")
    p.add_argument("--tolerance", type=float, default=PARITY_TOLERANCE)
    a = p.parse_args(argv)
    source = None
    if a.data:
        from edge_app.datasets import open_dataset
        source = Source(open_dataset(a.data))
    out = Path(a.out) if a.out else Path(a.checkpoint).with_name("model.onnx")
    try:
        print(json.dumps(export_checkpoint(Path(a.checkpoint), out, source, tolerance=a.tolerance)))
    except ExportError as exc:
        print(f"edge-app export: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
