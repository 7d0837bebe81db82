"""The MobileNetV2 feature extractor of a TF Object Detection API graph as a torchvision state dict.

TF's ``FeatureExtractor/MobilenetV2/...`` consts (the frozen graph keeps BatchNorm unfolded: FusedBatchNorm
with gamma, beta, moving_mean, moving_variance, epsilon 0.001, is_training false) are renamed and
transposed onto ``torchvision.models.mobilenet_v2().features.*`` and written as ``backbone.npz``, which
``edge-app train --weights`` loads like any state dict (conversion.transfer). Runs in the import venv:
numpy and TensorFlow only, no torch.

The mapping (TF scope -> torchvision module; k = 1..16)::

    Conv                       -> features.0    (0: conv 3x3 s2, 1: BN)
    expanded_conv              -> features.1    (conv.0: depthwise+BN, conv.1: project, conv.2: BN)
    expanded_conv_k            -> features.k+1  (conv.0: expand+BN, conv.1: depthwise+BN, conv.2: project,
                                                 conv.3: BN)
    Conv_1                     -> features.18   (0: conv 1x1 320->1280, 1: BN)

Tensors: conv ``weights`` HWIO -> OIHW; ``depthwise_weights`` (H, W, C, 1) -> (C, 1, H, W); BN gamma ->
weight, beta -> bias, moving_mean -> running_mean, moving_variance -> running_var + (0.001 - 1e-5): TF
normalises with epsilon 0.001, torchvision's BatchNorm2d with 1e-5, and this shift makes
``(x - m) / sqrt(v + eps)`` the same number in eval mode. ``num_batches_tracked`` (a counter, no TF
counterpart) is written as 0 so every key of ``features`` is present.

Not part of the backbone, reported as unused: the SSD extra layers ``layer_19_*`` (1x1 + depthwise 3x3 s2
+ 1x1 down to 1x1 maps) and everything outside ``FeatureExtractor`` (``BoxPredictor_*``, anchors,
post-processing).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import write_atomic

from ..extras import require
from edge_app.cli.errors import fail

SCOPE = "FeatureExtractor/MobilenetV2/"
TF_BN_EPS = 1e-3
TORCH_BN_EPS = 1e-5
# torchvision's mobilenet_v2 inverted-residual settings (expansion t, channels c, repeats n, stride s),
# width 1.0: the layout the keys below must fill (17 blocks after the stem).
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]
_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


class BackboneError(ValueError):
    """The graph has no MobileNetV2 feature extractor this mapping reads."""


@dataclass
class MappingReport:
    mapped: dict[str, str] = field(default_factory=dict)   # TF const -> torchvision key
    unused: list[str] = field(default_factory=list)        # FeatureExtractor consts outside the backbone
    outside: int = 0                                       # consts outside FeatureExtractor (box predictors, ...)
    unfilled: list[str] = field(default_factory=list)      # torchvision features.* keys with no TF tensor
    counters: list[str] = field(default_factory=list)      # num_batches_tracked, written as 0
    bn: str = ""

    def summary(self) -> str:
        return (f"backbone: {len(self.mapped)} TF tensors mapped onto torchvision mobilenet_v2.features, "
                f"{len(self.unused)} FeatureExtractor tensors unused (SSD extra layers), {self.outside} "
                f"consts outside FeatureExtractor unused, {len(self.unfilled)} torchvision keys unfilled; {self.bn}")


def _scopes() -> list[tuple[str, int, bool]]:
    """(TF block scope, torchvision features index, has an expand conv) for the 17 inverted residuals."""
    out, k = [], 0
    for t, _c, n, _s in SETTINGS:
        for _ in range(n):
            out.append(("expanded_conv" if k == 0 else f"expanded_conv_{k}", k + 1, t != 1))
            k += 1
    return out


def _plan() -> dict[str, tuple[str, str]]:
    """TF layer scope (conv or its BatchNorm) -> (torchvision module prefix, kind: conv | dw | bn)."""
    plan: dict[str, tuple[str, str]] = {"Conv": ("features.0.0", "conv"), "Conv/BatchNorm": ("features.0.1", "bn"),
                                        "Conv_1": ("features.18.0", "conv"),
                                        "Conv_1/BatchNorm": ("features.18.1", "bn")}
    for scope, idx, expand in _scopes():
        f = f"features.{idx}.conv"
        parts = [("expand", "conv"), ("depthwise", "dw"), ("project", "conv")] if expand else \
            [("depthwise", "dw"), ("project", "conv")]
        j = 0
        for name, kind in parts:
            if name == "project":  # a plain conv followed by its own BN module
                plan[f"{scope}/project"] = (f"{f}.{j}", "conv")
                plan[f"{scope}/project/BatchNorm"] = (f"{f}.{j + 1}", "bn")
            else:  # Conv2dNormActivation: .0 conv, .1 BN
                plan[f"{scope}/{name}"] = (f"{f}.{j}.0", kind)
                plan[f"{scope}/{name}/BatchNorm"] = (f"{f}.{j}.1", "bn")
                j += 1
    return plan


def expected_keys() -> list[str]:
    """Every key of ``torchvision.models.mobilenet_v2().features`` (prefixed ``features.``), from SETTINGS."""
    keys = []
    for prefix, kind in _plan().values():
        keys += [f"{prefix}.weight"] if kind != "bn" else \
            [f"{prefix}.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    return keys


def graph_consts(gd: Any) -> dict[str, np.ndarray]:
    """Every Const node of the GraphDef with at least one dimension, by node name."""
    tf = require("tensorflow")
    return {n.name: tf.make_ndarray(n.attr["value"].tensor) for n in gd.node
            if n.op == "Const" and len(n.attr["value"].tensor.tensor_shape.dim) > 0}


def map_backbone(gd: Any, source: str = "graph") -> tuple[dict[str, np.ndarray], MappingReport]:
    """(state dict keyed by torchvision names, report) from a frozen graph's MobileNetV2 consts."""
    consts = graph_consts(gd)
    ours = {k[len(SCOPE):]: v for k, v in consts.items() if k.startswith(SCOPE)}
    if not ours:
        raise BackboneError(f"{source}: no {SCOPE}... consts: not a MobileNetV2 feature extractor")
    bn_ops = [n for n in gd.node if n.op.startswith("FusedBatchNorm") and n.name.startswith(SCOPE)]
    if not bn_ops:
        raise BackboneError(f"{source}: the MobileNetV2 BatchNorms are folded into the convolutions (no "
                            "FusedBatchNorm): expected unfolded gamma/beta/moving_mean/moving_variance")
    eps = {round(float(n.attr["epsilon"].f), 6) for n in bn_ops}
    if eps != {TF_BN_EPS} or any(n.attr["is_training"].b for n in bn_ops):
        raise BackboneError(f"{source}: expected inference BatchNorms with epsilon {TF_BN_EPS}, got {sorted(eps)}")
    report = MappingReport(outside=len(consts) - len(ours),
                           bn=f"unfolded FusedBatchNorm x{len(bn_ops)}, epsilon {TF_BN_EPS} (running_var shifted "
                              f"by {TF_BN_EPS - TORCH_BN_EPS:g} for torch's {TORCH_BN_EPS:g})")
    state: dict[str, np.ndarray] = {}
    for scope, (prefix, kind) in _plan().items():
        if kind == "bn":
            for tf_name, torch_name in _BN.items():
                value = ours.get(f"{scope}/{tf_name}")
                if value is None:
                    continue
                if tf_name == "moving_variance":
                    value = value + (TF_BN_EPS - TORCH_BN_EPS)  # same normalisation under torch's epsilon
                state[f"{prefix}.{torch_name}"] = value.astype(np.float32)
                report.mapped[f"{SCOPE}{scope}/{tf_name}"] = f"{prefix}.{torch_name}"
            if f"{prefix}.weight" in state:
                state[f"{prefix}.num_batches_tracked"] = np.array(0, np.int64)
                report.counters.append(f"{prefix}.num_batches_tracked")
            continue
        tf_name = "depthwise_weights" if kind == "dw" else "weights"
        value = ours.get(f"{scope}/{tf_name}")
        if value is None:
            continue
        # HWIO -> OIHW; depthwise (H, W, C, multiplier 1) -> (C, 1, H, W), torch's groups=C layout
        state[f"{prefix}.weight"] = np.ascontiguousarray(value.transpose(3, 2, 0, 1) if kind == "conv"
                                                         else value.transpose(2, 3, 0, 1)).astype(np.float32)
        report.mapped[f"{SCOPE}{scope}/{tf_name}"] = f"{prefix}.weight"
    report.unused = sorted(SCOPE + k for k in ours if SCOPE + k not in report.mapped)
    report.unfilled = [k for k in expected_keys() if k not in state]
    return state, report


def write_backbone(state: dict[str, np.ndarray], report: MappingReport, path: Path) -> Path:
    """``path`` (.npz, keys = torchvision names) and its report beside it (.json), each written atomically."""
    buf = io.BytesIO()
    np.savez(buf, **state)  # type: ignore[arg-type]  # numpy stubs type **kwds like allow_pickle
    write_atomic(Path(path), buf.getvalue())
    write_atomic(Path(path).with_suffix(".json"), json.dumps(asdict(report), indent=1))
    return Path(path)


def tf_activations(gd: Any, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """The graph's tensors ``names`` (e.g. ``FeatureExtractor/MobilenetV2/expanded_conv_13/expansion_output``)
    for ``x`` (1, H, W, 3) float, already normalised: fed in place of the preprocessor's output, so any H, W."""
    tf = require("tensorflow")
    g = tf.Graph()
    with g.as_default():
        ph = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name="probe")
        tf.import_graph_def(gd, name="m", input_map={"Preprocessor/sub:0": ph})
    with tf.compat.v1.Session(graph=g) as sess:
        out = sess.run([f"m/{n}:0" for n in names], {ph: x.astype(np.float32)})
    return dict(zip(names, out))


def main(argv: list[str] | None = None) -> int:
    """``python -m conversion.importers.backbone MODEL.pb --out backbone.npz [--probe x.npy --probe-out a.npz]``."""
    p = argparse.ArgumentParser(prog="python -m conversion.importers.backbone", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a TF Object Detection API frozen graph (.pb) with a MobileNetV2 extractor")
    p.add_argument("--out", required=True, help="backbone.npz (its .json report beside it)")
    p.add_argument("--probe", help="a (1, H, W, 3) normalised input (.npy) to run through the TF graph")
    p.add_argument("--probe-out", help="where the probed activations go (.npz)")
    p.add_argument("--probe-names", default="FeatureExtractor/MobilenetV2/expanded_conv_13/expansion_output",
                   help="comma-separated tensor names (no :0) to probe")
    a = p.parse_args(argv)
    from .tf_graph import ImportError_, read_graph
    try:
        gd = read_graph(Path(a.model))
        state, report = map_backbone(gd, a.model)
        write_backbone(state, report, Path(a.out))
        print(report.summary(), file=sys.stderr)
        if a.probe:
            acts = tf_activations(gd, np.load(a.probe), a.probe_names.split(","))
            buf = io.BytesIO()
            np.savez(buf, **{k.replace("/", "|"): v for k, v in acts.items()})  # type: ignore[arg-type]
            write_atomic(Path(a.probe_out or Path(a.out).with_suffix(".probe.npz")), buf.getvalue())
    except (ImportError_, BackboneError, OSError) as exc:
        return fail("", f"conversion.importers.backbone: {exc}")
    print(json.dumps({"npz": a.out, "mapped": len(report.mapped), "unused": len(report.unused),
                      "outside": report.outside, "unfilled": len(report.unfilled)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
