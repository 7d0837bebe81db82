"""An imported graph made for the parsers that build engines from it, and checked by one of them.

TensorRT's ONNX parser (on a Jetson) and OpenVINO's ONNX frontend take plain static graphs: a shape
sub-graph computed at run time (tf2onnx's ScatterND on scalar indices, OpenVINO refused NanoDet's) or an
opset import of a domain no node uses (ORT's pre-processing stamps every domain it knows; JetPack's
ONNX Runtime 1.16 refuses those) stops them. ``clean`` folds constants and drops unused opset imports;
``openvino_accepts`` runs OpenVINO's frontend on the result where OpenVINO is installed, standing in for
TensorRT's parser, which cannot run without a GPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import graph


def clean(model: Any) -> dict[str, Any]:
    """Constants folded (shape sub-graphs evaluated once) and unused opset imports dropped, in place;
    returns what was done. A node onnx's reference evaluator cannot fold is left as it is (the importer's
    parity check runs the graph either way)."""
    from ..quantize import prune_opset_imports

    before = sorted(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import)
    try:
        folded: int | str = graph.fold_constants(model)
    except Exception as exc:  # the reference evaluator lacks an op: the graph is left unfolded, and said so
        folded = f"not folded: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
    prune_opset_imports(model)
    after = sorted(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import)
    return {"folded_constants": folded, "opsets": after, **({"opsets_dropped": sorted(set(before) - set(after))}
                                                              if before != after else {})}


def openvino_accepts(path: Path) -> str:
    """"accepted by OpenVINO X" / "refused by OpenVINO X: <the failing node and why>" / "not checked: ..."."""
    from edge_app.backends import BackendError
    from edge_app.backends import openvino as ovb

    version = ovb.version()
    if version is None:
        return f"not checked: OpenVINO is not installed ({ovb.EXTRA})"
    try:
        ovb.read(Path(path))
    except BackendError as exc:
        return f"refused by OpenVINO {version}: {str(exc).split(': ', 1)[-1]}"
    return f"accepted by OpenVINO {version}"
