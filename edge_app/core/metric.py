"""The interface of every metric: a window (the live rolling P/R) and an offline evaluation call the same
three methods on the same class, so both give the same numbers (detectron2's reset / process / evaluate)."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Metric(Protocol):
    def reset(self) -> None:
        """Forget everything seen."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Add one frame's (or image's) predictions and truth."""

    def compute(self) -> Any:
        """The report of what was seen since the last reset (a small dataclass)."""
