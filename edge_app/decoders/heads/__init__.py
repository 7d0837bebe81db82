"""Detector head families: a registry from the ``head`` an artifact's metadata names to the class that
decodes its outputs (each family decoded here, once), and the reading of an unknown ONNX's output shapes
(``layout.detect``)."""
from __future__ import annotations

from ...core.artifact import ArtifactError, ArtifactMeta
from .base import Head
from .gfl import GflHead
from .nms_free import DetrHead, YoloE2EHead
from .ssd import SsdHead
from .yolo import YoloHead

HEADS: dict[str, type[Head]] = {"ssd": SsdHead, "gfl": GflHead, "yolo": YoloHead, "yolo-e2e": YoloE2EHead,
                                "detr": DetrHead}


def open_head(meta: ArtifactMeta) -> Head:
    """The decoder of this artifact's head; an unknown family is an ArtifactError naming the known ones."""
    cls = HEADS.get(meta.head or "ssd")
    if cls is None:
        raise ArtifactError(f"metadata head {meta.head!r}: expected one of {sorted(HEADS)}")
    return cls(meta)


__all__ = ["HEADS", "Head", "open_head"]
