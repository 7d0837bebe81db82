"""Model builders by name: ssd (SSDLite320-MobileNetV3), unet, deeplabv3 (MobileNetV3 backbone)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

MODEL_TASK = {"ssd": "detection", "unet": "segmentation", "deeplabv3": "segmentation"}


def build_model(name: str, num_classes: int, **kwargs: Any) -> Any:
    """A torch model for ``name``; num_classes counts what the head predicts (SSD: incl. background)."""
    from .deeplab import build_deeplabv3
    from .ssd import build_ssd
    from .unet import UNet

    builders: dict[str, Callable[..., Any]] = {"ssd": build_ssd, "unet": UNet, "deeplabv3": build_deeplabv3}
    if name not in builders:
        raise ValueError(f"unknown model {name!r}: expected one of {sorted(builders)}")
    return builders[name](num_classes=num_classes, **kwargs)
