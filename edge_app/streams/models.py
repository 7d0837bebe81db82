"""The models the streams run, by name, as the candidate models' manager (``rollout.manager``) sees them:
the live one, another artifact opened as that model (the live spec with the candidate's artifact, its
thresholds and precision), the swap between two batches (every list that holds the model), and its live
numbers since the last swap (frames, errors, seconds per frame p50)."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..inference.models import ModelSpec, open_model

log = logging.getLogger("edge_app")


class LiveModels:
    def __init__(self, models: list[Any], specs: dict[str, ModelSpec], building: Callable[[str], None]) -> None:
        """models: the app's list (changed in place by a swap); specs: each model's spec; building(message):
        progress of a long open (a TensorRT engine build)."""
        self.models, self.specs, self.building = models, specs, building
        self.batcher: Any = None
        self.streams: Any = None

    def attach(self, batcher: Any, streams: Any) -> None:
        """The batcher and the streams, once built (they are built after the manager that uses this)."""
        self.batcher, self.streams = batcher, streams

    def get(self, name: str) -> Any:
        return next((m for m in self.models if m.name == name), None)

    def open_as(self, name: str, entry: dict[str, Any], threads: int) -> Any:
        """Model ``name`` from ``entry`` (artifact, thresholds_file, precision); ``threads`` 0 = the live
        model's own."""
        spec = dataclasses.replace(
            self.specs[name], artifact=Path(entry["artifact"]), precision=entry.get("precision") or "auto",
            thresholds_file=Path(entry["thresholds_file"]) if entry.get("thresholds_file") else None,
            threads=threads or self.specs[name].threads)
        model = open_model(spec, self.building)
        if hasattr(model, "batching"):
            model.batching = getattr(self.get(name), "batching", True)
        return model

    def swap(self, name: str, new: Any) -> Any:
        """``new`` takes the place of model ``name`` between two batches; returns the replaced one, still open."""
        old = self.batcher.swap(name, new)
        for models in [self.models, self.streams.models] + [r.stream.models for r in self.streams.all()]:
            for i, m in enumerate(models):
                if m is old:
                    models[i] = new
        log.info("model %s swapped: %s", name, new.describe())
        return old

    def stats(self, name: str) -> tuple[int, int, float | None]:
        seconds = list(self.batcher.model_seconds.get(name, ()))
        return (self.batcher.model_frames[name], self.batcher.model_errors[name],
                float(np.median(seconds)) if seconds else None)
