"""A candidate model's record: what it is (its artifact entry, where it came from: the config, the API, a
fleet rollout and command), where it stands (``state``; the final ones in ``FINAL``), and what runs and is
measured for it (its model and shadow runner, the paired score, the decision, the watch after a promotion,
a download's progress). ``manager.RolloutManager`` moves it through its states; ``report`` describes it."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ab import PairedScore, Watch
from .shadow import ShadowRunner

FINAL = ("rejected", "rolled_back", "failed", "cancelled", "kept")


def thresholds_beside(artifact: Path) -> Path | None:
    """``<model>.thresholds.json`` beside an artifact (what calibrate writes), if there."""
    p = Path(artifact).with_suffix(".thresholds.json")
    return p if p.is_file() else None


@dataclass
class Candidate:
    name: str
    entry: dict[str, Any]                  # artifact, thresholds_file, precision, sha256
    origin: str = "api"                    # config | api | fleet
    rollout: str = ""                      # the fleet's rollout id
    command: str = ""                      # the fleet command that started it
    state: str = "shadow"
    since: float = field(default_factory=time.time)
    model: Any = None
    runner: ShadowRunner | None = None
    score: PairedScore | None = None
    decision: dict[str, Any] | None = None
    reason: str = ""
    previous: Any = None                   # the replaced live model, open until the watch is over
    previous_entry: dict[str, Any] | None = None
    watch: Watch | None = None
    promoted_at: float = 0.0
    baseline: dict[str, float] = field(default_factory=dict)
    scored_samples: set[str] = field(default_factory=set)
    progress: dict[str, Any] = field(default_factory=dict)  # a download's bytes
