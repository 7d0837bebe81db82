"""Plots a person would rather look at than read: PR curves per class, confusion matrices.

matplotlib (the [eval] extra) is imported here only, with the Agg backend (no display needed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.detection_metrics import PRCurve


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install -e '.[eval]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pr_curves(curves: dict[str, PRCurve], chosen: dict[str, Any], title: str, path: Path) -> Path:
    """One figure: a precision-recall curve per class, the chosen operating point marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for name, c in curves.items():
        if c.recall.size == 0:
            continue
        env = np.maximum.accumulate(c.precision[::-1])[::-1]  # the interpolated envelope AP integrates
        line, = ax.plot(c.recall, env, label=f"{name} (n={c.num_gt})")
        ax.plot(c.recall, c.precision, color=line.get_color(), alpha=0.3, lw=0.8)
        pick = chosen.get(name)
        if pick is not None and np.isfinite(pick.recall):
            ax.plot([pick.recall], [pick.precision], "o", color=line.get_color())
            ax.annotate(f"{pick.threshold:.2f}", (pick.recall, pick.precision), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def confusion(matrix: np.ndarray, classes: tuple[str, ...], title: str, path: Path) -> Path:
    """Row-normalised confusion matrix (rows: truth, columns: prediction)."""
    plt = _plt()
    m = np.asarray(matrix, np.float64)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.55 * n), max(4.0, 1.0 + 0.5 * n)), dpi=100)
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    for i in range(n):
        for j in range(n):
            if norm[i, j] >= 0.005:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] < 0.6 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
