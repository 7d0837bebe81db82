"""Import a TFLite segmenter (MediaPipe's selfie / person segmentation and the like) as our ONNX artifact.

tf2onnx converts the standard ops; MediaPipe's custom ``Convolution2DTransposeBias`` (a transposed
convolution with bias, which ONNX Runtime and TensorRT do not know) is rewritten as a standard ONNX
``ConvTranspose`` with bias, its stride and padding read from the op's custom options in the TFLite
flatbuffer (``TfLiteTransposeConvParams``: padding, stride_w, stride_h). The input becomes NCHW
``images``; a one-channel sigmoid output becomes two-channel logits ``[0, z]`` (background, foreground),
whose softmax is exactly sigmoid(z), so our argmax decoder and the confidence both hold.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..extras import require

CUSTOM_DECONV = "Convolution2DTransposeBias"


def custom_options(path: Path) -> dict[str, list[tuple[int, int, int]]]:
    """{custom op name: [(padding, stride_w, stride_h), ...]} in graph order, from the flatbuffer."""
    require("tensorflow")
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    out: dict[str, list[tuple[int, int, int]]] = {}
    sub = model.Subgraphs(0)
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = codes[op.OpcodeIndex()]
        name = code.CustomCode().decode() if code.CustomCode() else ""
        if name:
            raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
            out.setdefault(name, []).append(struct.unpack("<3i", raw[:12]) if len(raw) >= 12 else (1, 1, 1))
    return out


def to_onnx(path: Path, opset: int = 17) -> tuple[Any, dict[str, Any]]:
    """The TFLite model as ONNX with the custom transposed convolutions rewritten; returns (model, info)."""
    tf2onnx = require("tf2onnx")
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    options = custom_options(path)
    model, _ = tf2onnx.convert.from_tflite(str(path), opset=opset)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    customs = [n for n in g.node if n.op_type.endswith(CUSTOM_DECONV)]
    if len(customs) != len(options.get(CUSTOM_DECONV, [])):
        raise ValueError(f"{path}: {len(customs)} {CUSTOM_DECONV} nodes after tf2onnx, "
                         f"{len(options.get(CUSTOM_DECONV, []))} in the flatbuffer")
    unknown = sorted({n.op_type for n in g.node if n.op_type.startswith("TFL_")} - {f"TFL_{CUSTOM_DECONV}"})
    if unknown:
        raise ValueError(f"{path}: custom ops this importer cannot rewrite: {unknown}")
    for node, (padding, stride_w, stride_h) in zip(customs, options.get(CUSTOM_DECONV, [])):
        x, w_name, b_name = node.input
        weights = numpy_helper.to_array(inits[w_name])            # TFLite: (out, kh, kw, in)
        bias = numpy_helper.to_array(inits[b_name])
        kh, kw = weights.shape[1:3]
        src = producers.get(x)
        # tf2onnx feeds the op NHWC through a Transpose from NCHW: take the NCHW tensor before it
        nchw = src.input[0] if src is not None and src.op_type == "Transpose" and \
            list(helper.get_attribute_value(src.attribute[0])) == [0, 2, 3, 1] else None
        if nchw is None:
            raise ValueError(f"{path}: {CUSTOM_DECONV} input is not an NCHW->NHWC transpose; cannot rewrite")
        wname, bname = f"{node.name}_W", f"{node.name}_B"
        g.initializer.extend([numpy_helper.from_array(weights.transpose(3, 0, 1, 2).copy(), wname),  # (in, out, kh, kw)
                              numpy_helper.from_array(bias.astype(np.float32), bname)])
        # TfLitePadding: 1 = SAME (output = input x stride), 2 = VALID
        pads = [0, 0, 0, 0] if padding == 1 and (kh, kw) == (stride_h, stride_w) else None
        if pads is None and padding != 2:
            raise ValueError(f"{path}: {CUSTOM_DECONV} with padding {padding}, kernel {(kh, kw)}, stride "
                             f"{(stride_h, stride_w)}: only SAME with kernel = stride and VALID are rewritten")
        out_nchw = f"{node.output[0]}_nchw"
        deconv = helper.make_node("ConvTranspose", [nchw, wname, bname], [out_nchw], kernel_shape=[kh, kw],
                                  strides=[stride_h, stride_w], pads=pads or [0, 0, 0, 0], name=f"{node.name}_onnx")
        back = helper.make_node("Transpose", [out_nchw], [node.output[0]], perm=[0, 2, 3, 1])
        at = list(g.node).index(node)
        g.node.remove(node)
        g.node.insert(at, back)
        g.node.insert(at, deconv)
    # the output: NHWC (1, H, W, 1) after a Sigmoid -> logits (1, 2, H, W) = [0, z]
    out = g.output[0]
    sig = producers.get(out.name)
    if sig is None or sig.op_type != "Sigmoid":
        raise ValueError(f"{path}: expected a sigmoid output (a one-channel segmenter); got {sig and sig.op_type}")
    z_nhwc = sig.input[0]
    g.node.remove(sig)
    g.node.extend([helper.make_node("Transpose", [z_nhwc], ["z_nchw"], perm=[0, 3, 1, 2]),
                   helper.make_node("Sub", ["z_nchw", "z_nchw"], ["zero"]),
                   helper.make_node("Concat", ["zero", "z_nchw"], ["logits"], axis=1)])
    dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
    h, w = dims[1], dims[2]
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, h, w])])
    # the input: NHWC -> NCHW "images"
    inp = g.input[0]
    idims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    old = inp.name
    del g.input[:]
    g.input.extend([helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, idims[3], idims[1], idims[2]])])
    for n in g.node:
        n.input[:] = [f"{old}_nhwc" if i == old else i for i in n.input]
    g.node.insert(0, helper.make_node("Transpose", ["images"], [f"{old}_nhwc"], perm=[0, 2, 3, 1]))
    onnx.checker.check_model(model)
    return model, {"input_size": (idims[1], idims[2]), "rewritten": len(customs),
                   "ops": sorted({n.op_type for n in g.node})}
