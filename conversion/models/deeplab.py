"""DeepLabv3 with torchvision's MobileNetV3-Large backbone: atrous (dilated) convolutions and ASPP."""
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
