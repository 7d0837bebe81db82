"""Model builders by name: ssd (SSDLite320-MobileNetV3), unet, deeplabv3 (MobileNetV3 backbone),
ssdlite-mobilenet-v2 and deeplabv3-mobilenet-v2 (MobileNetV2 trunk: the imported TF backbone.npz fits)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

MODEL_TASK = {"ssd": "detection", "unet": "segmentation", "deeplabv3": "segmentation",
              "ssdlite-mobilenet-v2": "detection", "deeplabv3-mobilenet-v2": "segmentation"}
# The architecture name each artifact's metadata carries.
ARCHITECTURE = {"ssd": "ssdlite320_mobilenet_v3_large", "unet": "unet", "deeplabv3": "deeplabv3_mobilenet_v3_large",
                "ssdlite-mobilenet-v2": "ssdlite_mobilenet_v2", "deeplabv3-mobilenet-v2": "deeplabv3_mobilenet_v2"}


def model_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """The builder's keyword arguments from a training config (TrainConfig as a dict: train and export
    build the same model from it)."""
    name = config["model"]
    if name == "unet":
        return {"depth": config["unet_depth"], "base": config["unet_base"]}
    extra = config.get("extra") or {}
    if name == "ssdlite-mobilenet-v2":
        return {"input_size": tuple(config["input_size"]), "stride8": bool(extra.get("stride8", False)),
                "scales": extra.get("anchor_scales")}
    if name == "deeplabv3-mobilenet-v2":
        return {"output_stride": int(extra.get("output_stride", 16))}
    return {}


def build_model(name: str, num_classes: int, **kwargs: Any) -> Any:
    """A torch model for ``name``; num_classes counts what the head predicts (SSD: incl. background)."""
    from .deeplab import build_deeplabv3, build_deeplabv3_mobilenet_v2
    from .ssd import build_ssd
    from .ssdlite_v2 import build_ssdlite_v2
    from .unet import UNet

    builders: dict[str, Callable[..., Any]] = {"ssd": build_ssd, "unet": UNet, "deeplabv3": build_deeplabv3,
                                               "ssdlite-mobilenet-v2": build_ssdlite_v2,
                                               "deeplabv3-mobilenet-v2": build_deeplabv3_mobilenet_v2}
    if name not in builders:
        raise ValueError(f"unknown model {name!r}: expected one of {sorted(builders)}")
    return builders[name](num_classes=num_classes, **kwargs)
