"""The metadata each trained model's artifact carries (see edge_app.core.artifact.ArtifactMeta)."""
from __future__ import annotations

from edge_app.core.artifact import ArtifactMeta

from .losses import score_semantics

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_meta(model: str, classes: tuple[str, ...], input_size: tuple[int, int], loss: str = "ce",
              ignore_index: int | None = None) -> ArtifactMeta:
    """Metadata for a model trained here. Detection classes exclude the background column."""
    from .models import ARCHITECTURE, MODEL_TASK

    size = (int(input_size[0]), int(input_size[1]))
    # MobileNetV2 models take TF's [-1, 1] input, the normalisation the imported backbone was trained with
    mean, std = ((0.5,) * 3, (0.5,) * 3) if model.endswith("mobilenet-v2") else (IMAGENET_MEAN, IMAGENET_STD)
    if model == "ssd":
        from .models.ssd import INPUT_SIZE, MEAN, STD
        size, mean, std = INPUT_SIZE, MEAN, STD
    if MODEL_TASK[model] == "detection":
        return ArtifactMeta(task="detection", classes=tuple(classes), input_size=size, color="RGB",
                            mean=mean, std=std, resize="stretch", score="softmax", background=True,
                            outputs={"boxes": "boxes", "scores": "scores"}, model=ARCHITECTURE[model])
    return ArtifactMeta(task="segmentation", classes=tuple(classes), input_size=size, color="RGB",
                        mean=mean, std=std, resize="stretch", score=score_semantics(loss),
                        outputs={"logits": "logits"}, model=ARCHITECTURE[model], ignore_index=ignore_index)
