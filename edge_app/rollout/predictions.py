"""A candidate's predictions of frames sampled for labelling, saved beside the sample
(``<samples_dir>/<sample id>.<model>.candidate.json``, written atomically) and read back when the sample's
labels arrive (the review page, the inbox), so both models are scored on the same labels however late."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import write_atomic
from ..core.types import Detections, SegMask
from ..inference.models import ModelResult

log = logging.getLogger("edge_app.rollout")


def prediction_path(samples_dir: Path, sample_id: str, name: str) -> Path:
    return Path(samples_dir) / f"{sample_id}.{name}.candidate.json"


def save_prediction(samples_dir: Path, sample_id: str, name: str, r: Any) -> None:
    """A ModelResult's detections (boxes (N, 4), scores, labels) or mask (a PNG, hex) as JSON."""
    entry: dict[str, Any] = {"task": r.task, "classes": list(r.classes)}
    if r.detections is not None:
        entry.update(boxes=r.detections.boxes.tolist(), scores=r.detections.scores.tolist(),
                     labels=r.detections.classes.tolist())
    if r.mask is not None:
        import cv2
        entry["mask_png"] = cv2.imencode(".png", r.mask.labels.astype(np.uint8))[1].tobytes().hex()
    try:
        write_atomic(prediction_path(samples_dir, sample_id, name), json.dumps(entry))
    except OSError as exc:  # a full disk costs this pair, never the stream
        log.warning("rollout: candidate prediction of %s not saved: %s", sample_id, exc)


def load_prediction(samples_dir: Path, sample_id: str, name: str) -> ModelResult | None:
    """The saved prediction as a ModelResult, None when there is none (or it is unreadable)."""
    try:
        e = json.loads(prediction_path(samples_dir, sample_id, name).read_text())
    except (OSError, ValueError):
        return None
    r = ModelResult(name, e["task"], tuple(e["classes"]))
    if "boxes" in e:
        r.detections = Detections(np.array(e["boxes"], np.float32).reshape(-1, 4), e["scores"], e["labels"])
    if "mask_png" in e:
        import cv2
        mask = cv2.imdecode(np.frombuffer(bytes.fromhex(e["mask_png"]), np.uint8), cv2.IMREAD_UNCHANGED)
        if mask is None:
            return None
        r.mask = SegMask(mask)
    return r
