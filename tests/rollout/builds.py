"""Variants of the demo detector for the rollout tests, made with the onnx package (the dev extra):

- ``weakened``: the same network with Gaussian noise on its convolution weights (a build that lost
  accuracy: the kind of INT8 or fine-tune that is worse on this camera);
- ``slow``: exactly the same detections, plus a heavy branch whose result is multiplied by 0 and added to
  the input (a build that is as accurate but far slower: it fails a latency health check once live).

Each is written with its sidecar (metadata with its own sha256) and a copy of the thresholds chosen for
the original (re-keyed to the new digest), as an artifact made by build + calibrate would be.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edge_app.core.artifact import sha256_file

DEMO = Path(__file__).resolve().parents[2] / "edge_app" / "demo"


def _finish(model, src: Path, dst: Path) -> Path:
    import onnx

    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    digest = sha256_file(dst)
    meta = json.loads(src.with_suffix(".json").read_text())
    meta.update(onnx_sha256=digest, precision="fp32")
    dst.with_suffix(".json").write_text(json.dumps(meta))
    thr = src.with_suffix(".thresholds.json")
    if thr.is_file():
        t = json.loads(thr.read_text())
        t["onnx_sha256"] = digest
        dst.with_suffix(".thresholds.json").write_text(json.dumps(t))
    return dst


def copy(dst: Path, src: Path = DEMO / "detector.onnx") -> Path:
    """The demo detector itself under another name (an artifact folder of its own)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    if src.with_suffix(".thresholds.json").is_file():
        shutil.copy(src.with_suffix(".thresholds.json"), dst.with_suffix(".thresholds.json"))
    return dst


def weakened(dst: Path, strength: float = 0.6, seed: int = 0, src: Path = DEMO / "detector.onnx") -> Path:
    """Noise of ``strength`` x each convolution weight's own std on every 4-D weight."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    rng = np.random.default_rng(seed)
    for i, init in enumerate(model.graph.initializer):
        w = numpy_helper.to_array(init)
        if w.ndim == 4 and w.size > 64:
            noisy = w + rng.normal(0, strength * float(w.std()), w.shape).astype(w.dtype)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(noisy, init.name))
    return _finish(model, src, dst)


def slow(dst: Path, channels: int = 48, src: Path = DEMO / "detector.onnx") -> Path:
    """images -> conv 3x3 (3 -> C) -> conv 3x3 (C -> C) -> mean -> x 0 -> + images -> the network."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    name = g.input[0].name
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.1, (channels, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.1, (channels, channels, 3, 3)).astype(np.float32)
    g.initializer.extend([numpy_helper.from_array(w1, "slow_w1"), numpy_helper.from_array(w2, "slow_w2"),
                          numpy_helper.from_array(np.zeros((), np.float32), "slow_zero")])
    for node in g.node:  # everything that read the input reads the sum
        for k, inp in enumerate(node.input):
            if inp == name:
                node.input[k] = "slow_sum"
    nodes = [helper.make_node("Conv", [name, "slow_w1"], ["slow_a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["slow_a", "slow_w2"], ["slow_b"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["slow_b", "slow_w2"], ["slow_c"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMean", ["slow_c"], ["slow_m"], keepdims=1),
             helper.make_node("Mul", ["slow_m", "slow_zero"], ["slow_z"]),
             helper.make_node("Add", [name, "slow_z"], ["slow_sum"])]
    for n in reversed(nodes):
        g.node.insert(0, n)
    return _finish(model, src, dst)
