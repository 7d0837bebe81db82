"""``edge-app train``: transfer learning for SSD-MobileNet, U-Net and DeepLabv3 on local data.

Progress bars, a validation metric each epoch (core metrics), the best checkpoint kept, resumable from
the last one, seeded; DDP under ``torchrun`` (gloo on CPU). The best model is exported to ONNX with its
metadata at the end (see export.py).
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_app.core.artifact import write_atomic
from edge_app.cli.progress import add_progress_flag
from edge_app.cli.progress import progress as progress_bar
from edge_app.core.task_metric import metric_name
from edge_app.datasets import DatasetError, holdout, open_dataset

from . import transfer
from .datasets import DetectionTorchSet, SegmentationTorchSet, Source, detection_collate
from .extras import require
from .losses import LOSSES, get_loss
from .meta import make_meta
from .models import MODEL_TASK, build_model, model_kwargs
from .validate import validate_detection, validate_segmentation
from edge_app.cli.errors import fail

torch = require("torch")


@dataclass
class TrainConfig:
    model: str = "ssd"
    data: str = "synthetic"            # a dataset path (VOC/COCO/masks) or "synthetic"
    split: str | None = None           # split file for data (VOC ImageSets or CSV)
    val_data: str | None = None        # a separate validation dataset path
    val_split: str | None = None
    val_fraction: float = 0.0          # else: hold out this fraction of data (seeded)
    synthetic_train: int = 400
    synthetic_val: int = 100
    synthetic_size: tuple[int, int] | None = None  # (width, height) of synthetic scenes; default the input
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    weights: str | None = None
    transfer: str = "finetune"
    freeze_epochs: int = 0
    backbone_lr_mult: float = 0.1
    input_size: tuple[int, int] = (320, 320)
    loss: str = "dice_ce"
    cb_beta: float = 0.999
    unet_depth: int = 4
    unet_base: int = 16
    classes: tuple[str, ...] | None = None
    out: str = "artifacts/model"
    resume: bool = False
    seed: int = 0
    workers: int = 0
    time_limit_min: float = 0.0        # stop after the epoch that passes it (0 = none)
    max_val_images: int | None = None
    export: bool = True
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return (torch.distributed.get_rank() if world > 1 else 0), world


def _sources(cfg: TrainConfig) -> tuple[Source, Source]:
    if cfg.data == "synthetic":
        size = ((int(cfg.synthetic_size[0]), int(cfg.synthetic_size[1])) if cfg.synthetic_size
                else (cfg.input_size[1], cfg.input_size[0]))
        return (Source(synthetic_count=cfg.synthetic_train, synthetic_seed=cfg.seed, synthetic_size=size),
                Source(synthetic_count=cfg.synthetic_val, synthetic_seed=cfg.seed + 10_000, synthetic_size=size))
    ds = open_dataset(cfg.data, cfg.split)
    if cfg.classes:  # by name: a box keeps its class, the list only chooses and orders them
        ds = ds.with_classes(tuple(cfg.classes))
    if cfg.val_data:
        # The validation set's ids follow the training classes by name: a set that lacks one class (or
        # lists them in another order) must not shift every label.
        val = open_dataset(cfg.val_data, cfg.val_split).with_classes(ds.classes)
    elif cfg.val_fraction > 0:
        ds, val = holdout(ds, cfg.val_fraction, cfg.seed)
    else:
        raise DatasetError("no validation data: give --val-data, --val-split or --val-fraction")
    return Source(ds), Source(val)


def _data_anchor_scales(cfg: TrainConfig, src: Source, rank: int) -> TrainConfig:
    """``--anchor-scales auto``: the default-box scales as quantiles of the training boxes' sizes (kept in
    the config, so export and resume build the same anchors)."""
    from .anchor_scales import dataset_box_sizes, scales_from_boxes

    if src.dataset is None:
        raise DatasetError("--anchor-scales auto needs a labelled --data set (not synthetic)")
    n_maps = 7 if cfg.extra.get("stride8") else 6
    scales = scales_from_boxes(dataset_box_sizes(src.dataset.samples), n_maps)
    _log(rank, f"anchor scales from {len(src)} training images: {scales}")
    return replace(cfg, extra={**cfg.extra, "anchor_scales": scales})


def _log(rank: int, msg: str) -> None:
    if rank == 0:
        print(msg, flush=True)


def train(cfg: TrainConfig) -> dict[str, Any]:
    rank, world = _distributed()
    if world > 1:
        _log(rank, f"distributed: {world} processes, backend {torch.distributed.get_backend()}")
    torch.manual_seed(cfg.seed)
    task = MODEL_TASK[cfg.model]
    train_src, val_src = _sources(cfg)
    for name, src in (("train", train_src), ("val", val_src)):
        if src.dataset is not None:
            _log(rank, f"{name}: {len(src)} images from {src.dataset.root}\n{src.dataset.issues.summary()}")
    classes = train_src.classes if task == "detection" else train_src.mask_classes
    meta = make_meta(cfg.model, classes, cfg.input_size, cfg.loss, train_src.ignore_index)
    num_outputs = len(classes) + 1 if task == "detection" else len(classes)
    if cfg.extra.get("anchor_scales") == "auto":
        cfg = _data_anchor_scales(cfg, train_src, rank)
    model = build_model(cfg.model, num_outputs, **model_kwargs(asdict(cfg)))
    if cfg.weights:
        report = transfer.load_weights(model, Path(cfg.weights), backbone=transfer.backbone_of(model))
        _log(rank, report.summary())
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if task == "detection":
        train_set: Any = DetectionTorchSet(train_src, meta.input_size, train=True, seed=cfg.seed)
        collate: Any = detection_collate
        loss_fn: Callable[..., Any] | None = None  # torchvision's SSD computes its own losses
    else:
        from edge_app.frames.preprocess import Preprocessor
        train_set = SegmentationTorchSet(train_src, Preprocessor.from_meta(meta), train=True, seed=cfg.seed)
        collate = None
        loss_fn = get_loss(cfg.loss, train_src.ignore_index, cfg.cb_beta)
    sampler = (torch.utils.data.distributed.DistributedSampler(train_set, world, rank, seed=cfg.seed)
               if world > 1 else None)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
        num_workers=cfg.workers, collate_fn=collate, drop_last=len(train_set) > cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed))
    optimizer = torch.optim.AdamW(transfer.param_groups(model, cfg.lr, cfg.backbone_lr_mult),
                                  lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = max(1, cfg.epochs * len(loader))
    warmup = min(200, total_steps // 10 + 1)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    state: dict[str, Any] = {"epoch": 0, "step": 0, "best": -math.inf, "history": []}
    last = out / "last.pt"
    if cfg.resume and last.is_file():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        state = ck["state"]
        _log(rank, f"resumed from {last} at epoch {state['epoch']}")
    metric = metric_name(task, len(classes))
    started = time.monotonic()
    ddp_model: Any = None
    ddp_trainable: bool | None = None
    for epoch in range(state["epoch"], cfg.epochs):
        trainable = transfer.backbone_trainable_at(cfg.transfer, epoch, cfg.freeze_epochs)
        model.train()
        transfer.set_backbone_trainable(model, trainable)
        if world > 1 and ddp_trainable != trainable:  # DDP needs a new wrapper when trainable params change
            ddp_model = torch.nn.parallel.DistributedDataParallel(model)
            ddp_trainable = trainable
        net = ddp_model if world > 1 else model
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_set.epoch = epoch
        losses = []
        bar = progress_bar(loader, len(loader), f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress and rank == 0,
                           leave=True)
        for images, targets in bar:
            step = state["step"]
            scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps)))
            for g, base in zip(optimizer.param_groups, base_lrs):
                g["lr"] = base * scale
            if task == "detection":
                loss_dict = net(list(images), targets)
                loss = sum(loss_dict.values())
            else:
                assert loss_fn is not None
                loss = loss_fn(net(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            state["step"] = step + 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", lr=f"{optimizer.param_groups[-1]['lr']:.2e}")
        state["epoch"] = epoch + 1
        if rank == 0:
            metrics = _validate(cfg, model, val_src, meta)
            entry = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None,
                     "backbone_trainable": trainable, metric: metrics[metric],
                     **({"mAP": metrics["mAP"]} if "mAP" in metrics else {}),
                     "seconds": round(time.monotonic() - started, 1)}
            state["history"].append(entry)
            improved = metrics[metric] > state["best"]
            if improved:
                state["best"] = metrics[metric]
                state["best_metrics"] = metrics
            _save(out, model, optimizer, state, cfg, meta, best=improved)
            print(json.dumps(entry), flush=True)
        if cfg.time_limit_min and time.monotonic() - started > cfg.time_limit_min * 60:
            _log(rank, f"time limit of {cfg.time_limit_min} min reached after epoch {epoch + 1}")
            break
    result = {"metric": metric, "best": state["best"], "history": state["history"],
              "best_metrics": state.get("best_metrics"), "out": str(out)}
    if rank == 0 and cfg.export:
        from .export import export_checkpoint
        result["export"] = export_checkpoint(out / "best.pt", out / "model.onnx", val_src)
    if world > 1:
        # DDP's reducer holds the process group: left to the interpreter's exit, its gloo threads can be
        # torn down mid-join (SIGABRT "terminate called without an active exception", once on a loaded
        # 2-core CI run). Freed here, before the group, the shutdown order is ours.
        net = ddp_model = None
        gc.collect()
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


def _validate(cfg: TrainConfig, model: Any, val_src: Source, meta: Any) -> dict[str, Any]:
    if meta.task == "detection":
        from .models.ssd import SSDExport
        return validate_detection(SSDExport(model), val_src, meta, cfg.progress, max_images=cfg.max_val_images)
    return validate_segmentation(model, val_src, meta, cfg.progress, max_images=cfg.max_val_images)


def _save(out: Path, model: Any, optimizer: Any, state: dict[str, Any], cfg: TrainConfig, meta: Any,
          best: bool) -> None:
    ck = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
          "config": asdict(cfg), "meta": asdict(meta)}
    for name in ("last.pt",) + (("best.pt",) if best else ()):
        tmp = out / f".{name}.tmp"
        torch.save(ck, tmp)
        os.replace(tmp, out / name)
    write_atomic(out / "history.json", json.dumps(state["history"], indent=1))


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="edge-app train", description=__doc__)
    d = TrainConfig()
    p.add_argument("--model", choices=sorted(MODEL_TASK), default=d.model)
    p.add_argument("--data", default=d.data, help="dataset path (VOC folder, COCO json, mask folder) or 'synthetic'")
    p.add_argument("--split", help="split file for --data (VOC ImageSets txt or CSV with 'filename')")
    p.add_argument("--val-data", help="validation dataset path")
    p.add_argument("--val-split", help="split file for --val-data")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="hold out this fraction of --data")
    p.add_argument("--synthetic-train", type=int, default=d.synthetic_train)
    p.add_argument("--synthetic-val", type=int, default=d.synthetic_val)
    p.add_argument("--synthetic-size", type=int, nargs=2, metavar=("W", "H"),
                   help="size of the synthetic scenes (default: the input size); e.g. the camera's 640 480")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--weights", help="local checkpoint (torchvision format): whole model or backbone only; or a "
                   ".npz of arrays keyed by torchvision names (edge-app import's backbone.npz)")
    p.add_argument("--transfer", choices=transfer.MODES, default=d.transfer)
    p.add_argument("--freeze-epochs", type=int, default=d.freeze_epochs)
    p.add_argument("--backbone-lr-mult", type=float, default=d.backbone_lr_mult)
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None)
    p.add_argument("--stride8", action="store_true", help="ssdlite-mobilenet-v2: one more head on the stride-8 "
                   "map (block 6's expansion, 192 ch) for small objects")
    p.add_argument("--anchor-scales", help="ssdlite-mobilenet-v2: default-box scales, 'auto' (quantiles of the "
                   "training boxes' sizes) or comma-separated maps+1 floats (default: 0.2..0.95)")
    p.add_argument("--output-stride", type=int, choices=(8, 16), default=16,
                   help="deeplabv3-mobilenet-v2: the dilated trunk's output stride")
    p.add_argument("--loss", choices=LOSSES, default=d.loss, help="segmentation loss")
    p.add_argument("--cb-beta", type=float, default=d.cb_beta, help="class-balanced BCE beta")
    p.add_argument("--unet-depth", type=int, default=d.unet_depth)
    p.add_argument("--unet-base", type=int, default=d.unet_base)
    p.add_argument("--classes", help="comma-separated class names (overrides the dataset's)")
    p.add_argument("--out", default=d.out)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--time-limit-min", type=float, default=d.time_limit_min)
    p.add_argument("--max-val-images", type=int)
    p.add_argument("--no-export", action="store_true")
    add_progress_flag(p)
    a = p.parse_args(argv)
    size = tuple(a.input_size) if a.input_size else ((320, 320) if MODEL_TASK[a.model] == "detection" else (256, 256))
    return TrainConfig(
        model=a.model, data=a.data, split=a.split, val_data=a.val_data, val_split=a.val_split,
        val_fraction=a.val_fraction, synthetic_train=a.synthetic_train, synthetic_val=a.synthetic_val,
        synthetic_size=tuple(a.synthetic_size) if a.synthetic_size else None,
        epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay, weights=a.weights,
        transfer=a.transfer, freeze_epochs=a.freeze_epochs, backbone_lr_mult=a.backbone_lr_mult,
        input_size=size, loss=a.loss, cb_beta=a.cb_beta, unet_depth=a.unet_depth, unet_base=a.unet_base,
        classes=tuple(a.classes.split(",")) if a.classes else None, out=a.out, resume=a.resume,
        seed=a.seed, workers=a.workers, time_limit_min=a.time_limit_min, max_val_images=a.max_val_images,
        export=not a.no_export, progress=not a.no_progress, extra=_extra_args(a))


def _extra_args(a: argparse.Namespace) -> dict[str, Any]:
    """The architecture options of the MobileNetV2 models (TrainConfig.extra; models.model_kwargs reads them)."""
    extra: dict[str, Any] = {}
    if a.model == "ssdlite-mobilenet-v2":
        extra["stride8"] = bool(a.stride8)
        if a.anchor_scales:
            extra["anchor_scales"] = (a.anchor_scales if a.anchor_scales == "auto"
                                      else [float(v) for v in a.anchor_scales.split(",")])
    elif a.stride8 or a.anchor_scales:
        raise SystemExit("--stride8 / --anchor-scales are options of --model ssdlite-mobilenet-v2")
    if a.model == "deeplabv3-mobilenet-v2":
        extra["output_stride"] = a.output_stride
    return extra


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_args(argv)
        if cfg.model == "ssd" and cfg.input_size != (320, 320):
            raise SystemExit("ssd: the SSDLite320 architecture has a fixed 320x320 input")
        result = train(cfg)
    except DatasetError as exc:
        return fail("train", f"{exc}")
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in result.items() if k != "history"}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
