"""SSD-MobileNet: torchvision's ssdlite320_mobilenet_v3_large with our class count, and its export form.

Default boxes on six feature maps (aspect ratios 2 and 3, scales 0.2..0.95) and box offsets encoded
with weights (10, 10, 5, 5), as in the SSD paper. Nothing is downloaded: weights come from --weights.
"""
from __future__ import annotations

import math
from typing import Any

from ..extras import require

torch = require("torch")
nn = torch.nn
tv_detection = require("torchvision.models.detection")

INPUT_SIZE = (320, 320)
# The SSD transform maps [0, 1] to [-1, 1]; the export takes the normalised tensor, so the runtime's
# Preprocessor applies the same mean/std (recorded in the artifact metadata).
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
_BOX_CLIP = math.log(1000.0 / 16)  # torchvision's bbox_xform_clip


def build_ssd(num_classes: int, **kwargs: Any) -> Any:
    """SSDLite320-MobileNetV3-Large; num_classes includes the background (class 0)."""
    return tv_detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                      num_classes=num_classes, **kwargs)


class SSDExport(nn.Module):  # type: ignore[name-defined]  # torch is an optional extra, typed Any
    """The graph that is exported: normalised (B, 3, H, W) -> boxes (B, A, 4) xyxy in input pixels,
    scores (B, A, C) softmax with background in column 0. NMS stays outside (the runtime's core NMS).
    Any torchvision SSD: H, W are its transform's fixed size (320x320 for ``ssd``)."""

    def __init__(self, ssd: Any) -> None:
        super().__init__()
        self.backbone = ssd.backbone
        self.head = ssd.head
        # Python floats: constants in the graph, no tensor unpacking while tracing.
        self.wx, self.wy, self.ww, self.wh = (float(w) for w in ssd.box_coder.weights)
        was_training = ssd.training
        ssd.eval()  # BatchNorm cannot run a 1-image batch in training mode
        fixed = getattr(ssd.transform, "fixed_size", None)  # (width, height), torchvision's convention
        size = (int(fixed[1]), int(fixed[0])) if fixed else INPUT_SIZE
        with torch.no_grad():
            dummy = torch.zeros(1, 3, *size)
            feats = list(self.backbone(dummy).values())
            images = tv_detection.image_list.ImageList(dummy, [size])
            anchors = ssd.anchor_generator(images, feats)[0]
        ssd.train(was_training)
        self.register_buffer("anchors", anchors.float())
        self.register_buffer("limit", torch.tensor([size[1], size[0], size[1], size[0]], dtype=torch.float32))

    def forward(self, x: Any) -> tuple[Any, Any]:
        feats = list(self.backbone(x).values())
        out = self.head(feats)
        rel, logits = out["bbox_regression"], out["cls_logits"]
        a = self.anchors
        widths = a[:, 2] - a[:, 0]
        heights = a[:, 3] - a[:, 1]
        cx = a[:, 0] + 0.5 * widths
        cy = a[:, 1] + 0.5 * heights
        dx, dy = rel[..., 0] / self.wx, rel[..., 1] / self.wy
        dw = torch.clamp(rel[..., 2] / self.ww, max=_BOX_CLIP)
        dh = torch.clamp(rel[..., 3] / self.wh, max=_BOX_CLIP)
        pcx, pcy = dx * widths + cx, dy * heights + cy
        pw, ph = torch.exp(dw) * widths, torch.exp(dh) * heights
        boxes = torch.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], dim=-1)
        boxes = torch.minimum(boxes.clamp(min=0.0), self.limit)  # x within the width, y within the height
        return boxes, torch.softmax(logits, dim=-1)
