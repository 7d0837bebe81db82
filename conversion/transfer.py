"""Transfer learning: load a local checkpoint (whole model or backbone only), freeze, fine-tune.

The lecture's three ways: feature extraction (backbone frozen), fine-tuning (all layers, the backbone at a
lower learning rate), and a schedule "frozen for N epochs, then unfrozen". Nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .extras import require

torch = require("torch")

MODES = ("finetune", "feature-extract", "freeze-then-finetune")
_PREFIXES = ("module.", "model.", "backbone.", "body.")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)       # in the checkpoint, not usable here
    reinitialised: list[str] = field(default_factory=list)  # in the model, not in the checkpoint

    def summary(self) -> str:
        def names(xs: list[str]) -> str:
            return ", ".join(xs[:6]) + (f", … (+{len(xs) - 6})" if len(xs) > 6 else "")
        return (f"weights: {len(self.loaded)} tensors loaded, {len(self.skipped)} skipped, "
                f"{len(self.reinitialised)} re-initialised\n"
                f"  skipped: {names(self.skipped) or '-'}\n  re-initialised: {names(self.reinitialised) or '-'}")


def _read_npz(path: Path) -> dict[str, Any]:
    """A numpy ``.npz`` of named arrays (e.g. ``backbone.npz`` from ``edge-app import``) as torch tensors."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: torch.from_numpy(np.array(data[k])) for k in data.files}
    except (ValueError, OSError) as exc:  # not a zip of .npy arrays, or a pickled object inside
        raise ValueError(f"{path}: not a .npz of named arrays (torchvision state-dict keys): {exc}") from None


def _state_dict(obj: Any, path: Path) -> dict[str, Any]:
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise ValueError(f"{path}: not a torchvision-style state dict (or a dict with 'model'/'state_dict')")
    return obj


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def load_weights(model: Any, path: Path, backbone: Any | None = None) -> LoadReport:
    """Load what fits from a checkpoint into ``model``; heads whose shape differs keep their fresh init.

    ``path``: a torch checkpoint, or a ``.npz`` of arrays keyed by torchvision names (``backbone.npz``).
    Matching: exact names; then names with wrapper prefixes stripped (module., backbone., ...);
    then, for a backbone-only checkpoint (e.g. an ImageNet MobileNetV3), the remaining tensors of
    ``backbone`` in order, where shapes agree one to one.
    """
    path = Path(path)
    raw = _read_npz(path) if path.suffix == ".npz" else torch.load(path, map_location="cpu", weights_only=False)
    ckpt = _state_dict(raw, path)
    target = model.state_dict()
    report = LoadReport()
    new: dict[str, Any] = {}
    stripped_target = {_strip(k): k for k in target}
    used: set[str] = set()
    for key, value in ckpt.items():
        dest = key if key in target else stripped_target.get(_strip(key))
        if dest is None or dest in new:
            continue
        if target[dest].shape != value.shape:
            report.skipped.append(f"{key} {tuple(value.shape)}≠{tuple(target[dest].shape)}")
            used.add(key)
            continue
        new[dest] = value
        used.add(key)
    if backbone is not None:
        # Ordered shape matching for checkpoints whose names follow another module layout.
        prefix = next((n + "." for n, m in model.named_modules() if m is backbone), "")
        free = [k for k in target if k.startswith(prefix) and k not in new]
        rest = [k for k in ckpt if k not in used]
        for dest, key in zip(free, rest):
            if target[dest].shape != ckpt[key].shape:
                break
            new[dest] = ckpt[key]
            used.add(key)
    report.skipped += [k for k in ckpt if k not in used]
    report.loaded = sorted(new)
    report.reinitialised = [k for k in target if k not in new]
    model.load_state_dict({**target, **new})
    return report


def backbone_of(model: Any) -> Any:
    """The pretrained part: ``model.backbone``, or its ``trunk()`` where the backbone also holds freshly
    initialised layers (SSDLite-MobileNetV2's extra blocks), which must train in feature extraction."""
    bb = model.backbone
    return bb.trunk() if hasattr(bb, "trunk") else bb


def set_backbone_trainable(model: Any, trainable: bool) -> None:
    """Freeze or unfreeze the backbone; frozen BatchNorm layers also stop updating their statistics."""
    bb = backbone_of(model)
    for p in bb.parameters():
        p.requires_grad_(trainable)
    for m in bb.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.train(trainable and model.training)


def param_groups(model: Any, lr: float, backbone_lr_mult: float) -> list[dict[str, Any]]:
    """Two groups: the backbone at lr * backbone_lr_mult, everything else at lr."""
    bb_ids = {id(p) for p in backbone_of(model).parameters()}
    head = [p for p in model.parameters() if id(p) not in bb_ids]
    return [{"params": list(backbone_of(model).parameters()), "lr": lr * backbone_lr_mult, "name": "backbone"},
            {"params": head, "lr": lr, "name": "head"}]


def backbone_trainable_at(mode: str, epoch: int, freeze_epochs: int) -> bool:
    if mode not in MODES:
        raise ValueError(f"unknown transfer mode {mode!r}: expected one of {MODES}")
    if mode == "feature-extract":
        return False
    if mode == "freeze-then-finetune":
        return epoch >= freeze_epochs
    return True
