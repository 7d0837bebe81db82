"""Segmentation losses: cross-entropy, BCE, Dice, class-balanced BCE (beta), and Dice + CE.

All take logits (B, C, H, W) and a class-index target (B, H, W) with an optional ignore index.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .extras import require

torch = require("torch")
F = torch.nn.functional

LOSSES = ("ce", "bce", "dice", "cb_bce", "dice_ce")


def _one_hot(target: Any, num_classes: int, ignore_index: int | None) -> tuple[Any, Any]:
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    onehot = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).float()
    return onehot, valid.unsqueeze(1).float()


def cross_entropy(logits: Any, target: Any, ignore_index: int | None = None) -> Any:
    return F.cross_entropy(logits, target, ignore_index=-100 if ignore_index is None else ignore_index)


def bce(logits: Any, target: Any, ignore_index: int | None = None, weights: Any = None) -> Any:
    """One-vs-all binary cross-entropy per class (sigmoid outputs); weights: (C,) per class."""
    onehot, valid = _one_hot(target, logits.shape[1], ignore_index)
    loss = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none") * valid
    if weights is not None:
        loss = loss * weights.view(1, -1, 1, 1)
    return loss.sum() / (valid.sum() * logits.shape[1]).clamp(min=1)


def class_balanced_weights(counts: Any, beta: float) -> Any:
    """Cui et al. 2019: weight_c = (1 - beta) / (1 - beta ** n_c), normalised to mean 1."""
    counts = counts.float().clamp(min=1)
    w = (1 - beta) / (1 - torch.pow(torch.tensor(beta), counts))
    return w / w.mean()


def class_balanced_bce(logits: Any, target: Any, ignore_index: int | None = None, beta: float = 0.999) -> Any:
    """BCE weighted per class by the effective number of pixels of each class in the batch."""
    c = logits.shape[1]
    valid_t = target if ignore_index is None else target[target != ignore_index]
    counts = torch.bincount(valid_t.reshape(-1), minlength=c)[:c]
    return bce(logits, target, ignore_index, class_balanced_weights(counts, beta))


def dice(logits: Any, target: Any, ignore_index: int | None = None, eps: float = 1.0) -> Any:
    """1 - soft Dice, averaged over the classes present in the target or the prediction."""
    onehot, valid = _one_hot(target, logits.shape[1], ignore_index)
    probs = torch.softmax(logits, dim=1) * valid
    onehot = onehot * valid
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    denom = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    score = (2 * inter + eps) / (denom + eps)
    return 1 - score.mean()


def dice_ce(logits: Any, target: Any, ignore_index: int | None = None) -> Any:
    return 0.5 * dice(logits, target, ignore_index) + 0.5 * cross_entropy(logits, target, ignore_index)


def get_loss(name: str, ignore_index: int | None = None, beta: float = 0.999) -> Callable[[Any, Any], Any]:
    table: dict[str, Callable[..., Any]] = {
        "ce": cross_entropy, "bce": bce, "dice": dice, "dice_ce": dice_ce,
        "cb_bce": lambda lg, t, ii: class_balanced_bce(lg, t, ii, beta)}
    if name not in table:
        raise ValueError(f"unknown loss {name!r}: expected one of {LOSSES}")
    fn = table[name]
    return lambda logits, target: fn(logits, target, ignore_index)


def score_semantics(loss: str) -> str:
    """How the runtime should read the logits: sigmoid for the BCE family, softmax otherwise."""
    return "sigmoid" if loss in ("bce", "cb_bce") else "softmax"
