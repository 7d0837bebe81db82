"""The one inference interface: ``infer({input name: array}) -> {output name: array}``."""
from __future__ import annotations

from typing import Protocol

import numpy as np


class BackendError(Exception):
    """A model that cannot be loaded or run by a backend (names the file and the reason)."""


class Backend(Protocol):
    name: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. Arrays are float32 unless the model says otherwise."""
        ...

    def close(self) -> None:
        ...
