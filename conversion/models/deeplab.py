"""DeepLabv3 (atrous convolutions and ASPP) on torchvision's MobileNetV3-Large (``deeplabv3``) or on a dilated
MobileNetV2 trunk (``deeplabv3-mobilenet-v2``, the imported TF backbone fits it; see models.mobilenet_v2)."""
from __future__ import annotations

from typing import Any

from ..extras import require

torch = require("torch")
nn = torch.nn
segmentation = require("torchvision.models.segmentation")


class DeepLabV3(nn.Module):  # type: ignore[name-defined]  # torch is an optional extra, typed Any
    """(B, 3, H, W) -> logits (B, num_classes, H, W). ``backbone`` is the dilated MobileNetV3 trunk."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        net = segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                        num_classes=num_classes, aux_loss=False)
        self.backbone = net.backbone
        self.classifier = net.classifier  # DeepLabHead: ASPP (rates 12, 24, 36) + 3x3 conv + 1x1
        # torchvision's MobileNetV3 uses BatchNorm momentum 0.01, tuned for long ImageNet runs: after a few
        # hundred steps from scratch the running statistics are still near their initial values and the
        # model in eval mode predicts one class everywhere (measured here: val mIoU 0.03 while the
        # training loss fell). 0.1 lets them follow the data within an epoch.
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1

    def forward(self, x: Any) -> Any:
        size = x.shape[-2:]
        feats = self.backbone(x)["out"]
        logits = self.classifier(feats)
        return nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def build_deeplabv3(num_classes: int, **kwargs: Any) -> DeepLabV3:
    return DeepLabV3(num_classes, **kwargs)


class DilatedMobileNetV2(nn.Module):  # type: ignore[name-defined]  # torch is an optional extra
    """MobileNetV2 ``features.0..17`` (to the 320-channel block 16; the 1x1 to 1280 is dropped, as in
    TF's DeepLab MobileNetV2), dilated to ``output_stride``: (B, 3, H, W) -> (B, 320, H/os, W/os)."""

    def __init__(self, output_stride: int = 16) -> None:
        super().__init__()
        from .mobilenet_v2 import dilate, mobilenet_v2_features

        self.features = mobilenet_v2_features()[:18]  # slicing keeps the keys 0..17
        dilate(self.features, output_stride)

    def trunk(self) -> Any:
        return self.features

    def forward(self, x: Any) -> Any:
        return self.features(x)


class DeepLabV3MobileNetV2(nn.Module):  # type: ignore[name-defined]
    """(B, 3, H, W) -> logits (B, num_classes, H, W): dilated MobileNetV2 + torchvision's DeepLabHead."""

    def __init__(self, num_classes: int, output_stride: int = 16) -> None:
        super().__init__()
        self.backbone = DilatedMobileNetV2(output_stride)
        self.classifier = segmentation.deeplabv3.DeepLabHead(320, num_classes)
        # DeepLabv3's rates are (6, 12, 18) at output stride 16 and doubled at 8; torchvision's head fixes
        # (12, 24, 36), which at stride 16 on a 256-px input (a 16x16 map) puts most taps in the padding.
        rates = [6, 12, 18] if output_stride == 16 else [12, 24, 36]
        self.classifier[0] = segmentation.deeplabv3.ASPP(320, rates)

    def forward(self, x: Any) -> Any:
        size = x.shape[-2:]
        logits = self.classifier(self.backbone(x))
        return nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def build_deeplabv3_mobilenet_v2(num_classes: int, output_stride: int = 16, **_: Any) -> DeepLabV3MobileNetV2:
    return DeepLabV3MobileNetV2(num_classes, output_stride)
