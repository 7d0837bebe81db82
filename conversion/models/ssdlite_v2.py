"""SSDLite-MobileNetV2 (the MobileNetV2 paper's detector, TF's ``ssdlite_mobilenet_v2``) on torchvision's
SSD, SSDLiteHead and DefaultBoxGenerator.

Feature maps: the expansion output of block 13 (576 channels, stride 16: TF's ``layer_15/expansion_output``,
``expanded_conv_13/expansion_output`` in the frozen graph), the final 1x1 conv (1280, stride 32), then four
extra blocks (1x1 to half + depthwise 3x3 stride 2 + 1x1) to 512, 256, 256, 128 channels at strides 64..512,
as TF's ``layer_19_*``. Heads: depthwise-separable (SSDLite), six default boxes per location (aspect
ratios 1, 1', 2, 1/2, 3, 1/3), scales 0.2..0.95.

Small objects (``stride8=True``): one more map in front, block 6's expansion output (192 channels,
stride 8), so that 4x more locations see objects of 10-30 px; ``scales`` replaces the 0.2..0.95
progression by explicit per-map scales (e.g. from the training boxes, conversion.anchor_scales).
"""
from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

from ..extras import require
from .mobilenet_v2 import MEAN, STD, mobilenet_v2_features

torch = require("torch")
nn = torch.nn
tv_detection = require("torchvision.models.detection")
tv_ops = require("torchvision.ops")

EXTRA_CHANNELS = (512, 256, 256, 128)


def _extra(cin: int, cout: int, norm: Any) -> Any:
    """TF's ``layer_19_1_Conv2d_N_1x1_{cout/2}`` + ``layer_19_2_Conv2d_N_3x3_s2_{cout}`` (depthwise + 1x1)."""
    mid = cout // 2
    act = nn.ReLU6
    return nn.Sequential(
        tv_ops.Conv2dNormActivation(cin, mid, 1, norm_layer=norm, activation_layer=act),
        tv_ops.Conv2dNormActivation(mid, mid, 3, stride=2, groups=mid, norm_layer=norm, activation_layer=act),
        tv_ops.Conv2dNormActivation(mid, cout, 1, norm_layer=norm, activation_layer=act))


class SSDLiteMobileNetV2Features(nn.Module):  # type: ignore[name-defined]  # torch is an optional extra
    """(B, 3, H, W) -> OrderedDict of 6 maps (7 with ``stride8``), channels ``out_channels``."""

    def __init__(self, stride8: bool = False) -> None:
        super().__init__()
        self.features = mobilenet_v2_features()  # keys features.N: the imported backbone.npz falls on them
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)  # torchvision's SSDLite head/extras
        self.extra = nn.ModuleList()
        cin = 1280
        for cout in EXTRA_CHANNELS:
            self.extra.append(_extra(cin, cout, norm))
            cin = cout
        self.stride8 = stride8
        self.out_channels = ([192] if stride8 else []) + [576, 1280, *EXTRA_CHANNELS]

    def trunk(self) -> Any:
        """The pretrained part (MobileNetV2 ``features``): what transfer learning freezes and loads."""
        return self.features

    def forward(self, x: Any) -> Any:
        f = self.features
        maps = []
        if self.stride8:
            x = f[:7](x)
            e6 = f[7].conv[0](x)              # block 6 expansion: 192 channels, stride 8
            maps.append(e6)
            x = f[8:14](f[7].conv[1:](e6))     # block 7 has no residual (stride 2), so this is f[7](x)
        else:
            x = f[:14](x)
        e13 = f[14].conv[0](x)                 # block 13 expansion: 576 channels, stride 16
        x = f[15:](f[14].conv[1:](e13))        # f[14] has no residual (stride 2): the same as f[14](x)
        maps += [e13, x]
        for block in self.extra:
            x = block(x)
            maps.append(x)
        return OrderedDict((str(i), m) for i, m in enumerate(maps))


def build_ssdlite_v2(num_classes: int, input_size: tuple[int, int] = (320, 320), stride8: bool = False,
                     scales: list[float] | None = None, **_: Any) -> Any:
    """torchvision SSD with this trunk; ``input_size`` (H, W); num_classes includes the background."""
    backbone = SSDLiteMobileNetV2Features(stride8)
    n_maps = len(backbone.out_channels)
    if scales is not None and len(scales) != n_maps + 1:
        raise ValueError(f"scales: expected {n_maps + 1} values (one per map and a last one), got {len(scales)}")
    anchors = tv_detection.anchor_utils.DefaultBoxGenerator([[2, 3]] * n_maps, min_ratio=0.2, max_ratio=0.95,
                                                            scales=scales)
    norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    head = tv_detection.ssdlite.SSDLiteHead(backbone.out_channels, anchors.num_anchors_per_location(),
                                            num_classes, norm)
    h, w = int(input_size[0]), int(input_size[1])
    # SSD's size is (width, height) (its transform's fixed_size); score/NMS settings as torchvision's SSDLite
    return tv_detection.ssd.SSD(backbone, anchors, (w, h), num_classes, image_mean=list(MEAN), image_std=list(STD),
                            head=head, score_thresh=0.001, nms_thresh=0.55, detections_per_img=300,
                            topk_candidates=300)
