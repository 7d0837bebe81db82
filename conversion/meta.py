"""The metadata each trained model's artifact carries (see edge_app.core.artifact.ArtifactMeta)."""
from __future__ import annotations

from edge_app.core.artifact import ArtifactMeta

from .losses import score_semantics

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_meta(model: str, classes: tuple[str, ...], input_size: tuple[int, int], loss: str = "ce",
              ignore_index: int | None = None) -> ArtifactMeta:
    """Metadata for a model trained here. Detection classes exclude the background column."""
    if model == "ssd":
        from .models.ssd import INPUT_SIZE, MEAN, STD
        return ArtifactMeta(task="detection", classes=tuple(classes), input_size=INPUT_SIZE, color="RGB",
                            mean=MEAN, std=STD, resize="stretch", score="softmax", background=True,
                            outputs={"boxes": "boxes", "scores": "scores"}, model="ssdlite320_mobilenet_v3_large")
    names = {"unet": "unet", "deeplabv3": "deeplabv3_mobilenet_v3_large"}
    return ArtifactMeta(task="segmentation", classes=tuple(classes), input_size=(int(input_size[0]), int(input_size[1])), color="RGB",
                        mean=IMAGENET_MEAN, std=IMAGENET_STD, resize="stretch", score=score_semantics(loss),
                        outputs={"logits": "logits"}, model=names[model], ignore_index=ignore_index)
