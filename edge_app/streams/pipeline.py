"""The live loop of one stream: capture -> models -> rolling metrics -> overlay -> outputs, in stages that
never wait on each other. Each stage hands the newest item to the next through a one-slot mailbox; a
stage that is slower than its producer skips stale items (counted as dropped) instead of building a
backlog. A per-frame fault is logged, counted and skipped, never fatal.

The stages live in ``streams``: a ``Stream`` (tracking, labels, overlay, outputs of one camera) and the
``Batcher`` (the inference thread of all streams). ``Pipeline`` is the single-stream composition of the
two, for tools and tests that run one source.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.types import Frame
from ..review.rolling import RollingMonitor
from ..sources import FrameSource
from .batcher import Batcher
from .stream import PipelineHooks, Processed, Stream
from .telemetry import Telemetry

__all__ = ["Pipeline", "PipelineHooks", "Processed"]


class Pipeline:
    def __init__(self, source: FrameSource, models: Sequence[Any], outputs: Sequence[Any],
                 rolling: RollingMonitor, telemetry: Telemetry, hooks: PipelineHooks | None = None,
                 hud: bool = True, analytics: Any = None, name: str = "main") -> None:
        """analytics: ``analytics.counting.Analytics`` (trackers, lines, zones), or None."""
        self.stream = Stream(name, source, outputs, rolling, telemetry, hooks, hud, analytics, models)
        self.batcher = Batcher(models, telemetry, max_batch=1, batch_timeout_s=0.0)
        self.batcher.add(self.stream)
        self.source, self.models, self.outputs = source, list(models), self.stream.outputs
        self.rolling, self.telemetry, self.hooks, self.analytics = rolling, telemetry, self.stream.hooks, analytics

    def start(self) -> None:
        self.stream.start()
        self.batcher.start()

    def stop(self, timeout: float = 1.5) -> None:
        self.batcher.stop(timeout / 3)
        self.stream.stop(timeout * 2 / 3)

    def threads(self) -> dict[str, tuple[bool, float]]:
        """name -> (alive, last heartbeat) of the source thread and the pipeline's own stage threads."""
        return {**self.stream.threads(), "inference": (self.batcher.thread_alive(), self.batcher.beat)}

    @property
    def last_output_at(self) -> float:
        return self.stream.last_output_at

    @property
    def first_output(self) -> Any:
        return self.stream.first_output

    @property
    def latest_results(self) -> list[Any]:
        return self.stream.latest_results

    def annotate(self, frame: Frame, results: list[Any]) -> Any:
        return self.stream.annotate(frame, results)

    def hud_lines(self) -> list[str]:
        return self.stream.hud_lines()

    def log_metrics(self) -> dict[str, Any]:
        return self.stream.log_metrics()
