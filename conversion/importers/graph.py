"""Making an imported ONNX graph a plain static one: constants folded (shape sub-graphs evaluated once),
explicit padding folded into the convolutions, inputs and outputs given our names, outputs of one role
concatenated, a dynamic batch axis where the graph allows it. Numpy + onnx (its reference evaluator);
every step keeps the function of the graph, and the importer's parity check proves it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..extras import require


def _consts(model: Any) -> dict[str, np.ndarray]:
    numpy_helper = require("onnx").numpy_helper
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def fold_constants(model: Any) -> int:
    """Every node whose inputs are all constants evaluated (onnx's reference evaluator) and replaced by
    initialisers; Constant nodes become initialisers. Returns the number of nodes folded."""
    onnx = require("onnx")
    from onnx.reference import ReferenceEvaluator

    g = model.graph
    consts = _consts(model)
    graph_outputs = {o.name for o in g.output}
    keep, folded = [], 0
    opset = {o.domain: o.version for o in model.opset_import}
    for node in g.node:
        if node.op_type == "Constant" or (node.input and all(i == "" or i in consts for i in node.input)
                                          and node.domain in ("", "ai.onnx")
                                          and not any(o in graph_outputs for o in node.output)):
            if node.op_type != "Constant":
                ins = [i for i in node.input if i]
                fn = onnx.helper.make_graph([node], "fold", [onnx.helper.make_tensor_value_info(
                    i, onnx.helper.np_dtype_to_tensor_dtype(consts[i].dtype), consts[i].shape) for i in ins],
                    [onnx.helper.make_empty_tensor_value_info(o) for o in node.output])
                m = onnx.helper.make_model(fn, opset_imports=[onnx.helper.make_opsetid("", opset.get("", 13))])
                values = ReferenceEvaluator(m).run(None, {i: consts[i] for i in ins})
                for name, v in zip(node.output, values):
                    consts[name] = np.asarray(v)
            folded += 1
            continue
        keep.append(node)
    used = {i for n in keep for i in n.input} | graph_outputs
    del g.node[:]
    g.node.extend(keep)
    del g.initializer[:]
    g.initializer.extend(onnx.numpy_helper.from_array(v, k) for k, v in consts.items() if k in used)
    return folded


def fold_pads(model: Any) -> int:
    """A constant Pad of the spatial axes only, feeding only a Conv (zeros) or a MaxPool (-inf: TF's PadV2
    before max pooling), becomes that node's own ``pads`` (TF's explicit SAME padding; a MaxPool's padding
    never wins the max, and a -inf tensor would give INT8 calibration an infinite range); returns how many."""
    onnx = require("onnx")
    g = model.graph
    consts = _consts(model)
    users: dict[str, list[Any]] = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    drop, count = set(), 0
    for pad in g.node:
        if pad.op_type != "Pad" or len(users.get(pad.output[0], [])) != 1:
            continue
        conv = users[pad.output[0]][0]
        mode = next((a.s.decode() for a in pad.attribute if a.name == "mode"), "constant")
        pads = consts.get(pad.input[1]) if len(pad.input) > 1 else None
        value = consts.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else np.zeros(1)
        fill = 0.0 if conv.op_type == "Conv" else -np.inf
        if conv.op_type not in ("Conv", "MaxPool") or conv.input[0] != pad.output[0] or mode != "constant" \
                or pads is None or value is None or np.any(np.asarray(value, np.float64) != fill) or len(pads) != 8 \
                or np.any(pads[[0, 1, 4, 5]] != 0):
            continue
        if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
            continue
        old = next((list(a.ints) for a in conv.attribute if a.name == "pads"), [0, 0, 0, 0])
        new = [old[0] + int(pads[2]), old[1] + int(pads[3]), old[2] + int(pads[6]), old[3] + int(pads[7])]
        kept = [a for a in conv.attribute if a.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend(kept + [onnx.helper.make_attribute("pads", new)])
        conv.input[0] = pad.input[0]
        drop.add(id(pad))
        count += 1
    nodes = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(nodes)
    return count


def rename(model: Any, mapping: dict[str, str]) -> None:
    """Tensor names changed everywhere (inputs, outputs, node inputs/outputs)."""
    g = model.graph
    for v in [*g.input, *g.output, *g.value_info]:
        v.name = mapping.get(v.name, v.name)
    for n in g.node:
        for k, name in enumerate(n.input):
            n.input[k] = mapping.get(name, name)
        for k, name in enumerate(n.output):
            n.output[k] = mapping.get(name, name)


def concat_outputs(model: Any, joined: dict[str, list[str]], axis: int = 1) -> None:
    """Graph outputs of one role (e.g. NanoDet's three levels' scores) replaced by their concatenation,
    named as ``joined``'s key, in the order given."""
    onnx = require("onnx")
    g = model.graph
    elem = {o.name: o.type.tensor_type.elem_type for o in g.output}
    rest = [o for o in g.output if not any(o.name in names for names in joined.values())]
    for name, parts in joined.items():
        g.node.append(onnx.helper.make_node("Concat", parts, [name], axis=axis, name=f"concat_{name}"))
        rest.append(onnx.helper.make_tensor_value_info(name, elem[parts[0]], None))
    del g.output[:]
    g.output.extend(rest)


def clean_shapes(model: Any) -> Any:
    """Shapes inferred afresh (tf2onnx's unknown output dims become known where the graph fixes them)."""
    onnx = require("onnx")
    del model.graph.value_info[:]
    for o in model.graph.output:
        o.type.tensor_type.ClearField("shape")
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def ops(model: Any) -> list[str]:
    return sorted({n.op_type for n in model.graph.node})
