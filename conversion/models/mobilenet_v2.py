"""torchvision's MobileNetV2 trunk for detection and segmentation, under its own key names.

The trunk is ``torchvision.models.mobilenet_v2().features`` kept as the attribute ``features``, so a model
that holds it as ``backbone.features`` has state-dict keys ``backbone.features.N...``; conversion.transfer
strips ``backbone.`` and the keys of an imported ``backbone.npz`` (``features.N...``, see
conversion.importers.backbone) or of a torchvision ImageNet checkpoint fall onto it by name.

Block indices (width 1.0, stride of each block's output for a 320x320 input):
features.0 stem s2 | 1 s2 | 2-3 s4 | 4-6 s8 | 7-13 s16 (7 downsamples) | 14-17 s32 (14 downsamples) |
18: 1x1 320->1280. TF's ``expanded_conv_13/expansion_output`` (SSDLite's first map, 576 channels at
stride 16) is the output of ``features[14].conv[0]``, the expand conv of the first stride-32 block.
"""
from __future__ import annotations

from typing import Any

from ..extras import require

torch = require("torch")
nn = torch.nn
tv_models = require("torchvision.models")

# TF SSDLite / DeepLab normalise to [-1, 1] (2x/255 - 1): the imported weights expect it, and so does
# training from scratch (it is as good a choice as ImageNet's mean/std for random weights).
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def mobilenet_v2_features() -> Any:
    """``torchvision.models.mobilenet_v2().features`` (19 modules), random init, nothing downloaded."""
    return tv_models.mobilenet_v2(weights=None).features


def dilate(features: Any, output_stride: int) -> None:
    """Atrous trunk: the depthwise convs of the blocks that would go below ``output_stride`` keep their
    resolution (stride 1) and dilate instead (rate 2, then 4), as in DeepLabv3. In place."""
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
    stages = [(14, 18)] if output_stride == 16 else [(7, 14), (14, 18)]
    rate = 1
    for start, stop in stages:
        rate *= 2
        for i in range(start, stop):
            dw = features[i].conv[1][0]  # expand (0), depthwise (1): Conv2dNormActivation -> its Conv2d
            dw.stride, dw.dilation, dw.padding = (1, 1), (rate, rate), (rate, rate)
