"""Model builders by name: ssd (SSDLite320-MobileNetV3), unet, deeplabv3 (MobileNetV3 backbone),
ssdlite-mobilenet-v2 and deeplabv3-mobilenet-v2 (MobileNetV2 trunk: the imported TF backbone.npz fits)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelKind:
    task: str          # "detection" | "segmentation"
    architecture: str  # the name the artifact's metadata carries
    builder: str       # "module:function" of this package, imported when a model is built (torch)


# The one registry of the models `edge-app train` builds.
MODELS: dict[str, ModelKind] = {
    "ssd": ModelKind("detection", "ssdlite320_mobilenet_v3_large", "ssd:build_ssd"),
    "unet": ModelKind("segmentation", "unet", "unet:UNet"),
    "deeplabv3": ModelKind("segmentation", "deeplabv3_mobilenet_v3_large", "deeplab:build_deeplabv3"),
    "ssdlite-mobilenet-v2": ModelKind("detection", "ssdlite_mobilenet_v2", "ssdlite_v2:build_ssdlite_v2"),
    "deeplabv3-mobilenet-v2": ModelKind("segmentation", "deeplabv3_mobilenet_v2",
                                        "deeplab:build_deeplabv3_mobilenet_v2"),
}
MODEL_TASK = {name: k.task for name, k in MODELS.items()}
ARCHITECTURE = {name: k.architecture for name, k in MODELS.items()}


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
    import importlib

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {sorted(MODELS)}")
    module, function = MODELS[name].builder.split(":")
    builder: Callable[..., Any] = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    return builder(num_classes=num_classes, **kwargs)
