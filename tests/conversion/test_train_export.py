"""Tiny end-to-end runs per model: train -> export (metadata, parity) -> ONNX Runtime through the runtime's
code; transfer-learning load report; freezing; resume; DDP on two CPU processes (gloo)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is needed")

from conversion import transfer  # noqa: E402
from conversion.models import build_model  # noqa: E402
from conversion.train import TrainConfig, train  # noqa: E402
from edge_app.core.artifact import read_embedded_meta, read_meta  # noqa: E402
from edge_app.inference.models import open_artifact  # noqa: E402
from edge_app.datasets.synthetic import SyntheticVideo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

TINY = {
    "ssd": dict(model="ssd", synthetic_train=8, synthetic_val=4, batch_size=4, input_size=(320, 320)),
    "unet": dict(model="unet", synthetic_train=8, synthetic_val=4, batch_size=4, input_size=(64, 96),
                 unet_depth=2, unet_base=4),
    "deeplabv3": dict(model="deeplabv3", synthetic_train=4, synthetic_val=2, batch_size=2, input_size=(64, 64)),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_train_export_and_run_in_onnxruntime(tmp_path, name):
    cfg = TrainConfig(data="synthetic", epochs=1, out=str(tmp_path / name), progress=False, **TINY[name])
    result = train(cfg)
    onnx = tmp_path / name / "model.onnx"
    assert onnx.is_file() and (tmp_path / name / "best.pt").is_file()
    assert result["export"]["parity_max_abs_diff"] <= 1e-4
    meta = read_meta(onnx)                       # the sidecar, checksum verified
    embedded = read_embedded_meta(onnx)          # and the copy inside the ONNX
    assert meta.classes == embedded.classes and meta.input_size == tuple(cfg.input_size)
    assert meta.extra["export"]["opset"] == 17 and meta.extra["validation"] is not None
    assert meta.extra["training"]["config"]["model"] == name
    import onnx as onnx_pkg
    assert onnx_pkg.load(str(onnx)).opset_import[0].version == 17
    model = open_artifact(onnx, score_threshold=0.0)
    frame = SyntheticVideo(160, 120, seed=1).next().image
    out = model.predict(frame)
    if meta.task == "detection":
        assert meta.background and out.detections is not None
        assert (out.detections.boxes[:, 2] <= 160).all()  # mapped back to the frame
    else:
        assert out.mask.labels.shape == (120, 160)


def test_unet_learns_from_scratch_above_a_floor(tmp_path):
    """Training itself, from random weights: 8 epochs (~20 s here) of a small U-Net on synthetic scenes
    must reach mIoU 0.30 on held-out scenes (measured 0.34; predicting background everywhere scores 0.20
    on such scenes, so the shapes have to be learned)."""
    cfg = TrainConfig(model="unet", data="synthetic", synthetic_train=96, synthetic_val=20, batch_size=8,
                      input_size=(96, 128), epochs=8, lr=4e-3, unet_depth=3, unet_base=8, seed=1,
                      out=str(tmp_path), progress=False, export=False)
    result = train(cfg)
    history = [h["mIoU"] for h in result["history"]]
    assert result["metric"] == "mIoU" and result["best"] == max(history)
    assert result["best"] >= 0.30, history
    assert history[-1] > history[0] - 0.02  # it did not get worse while training


def test_val_set_missing_a_class_keeps_every_label_on_its_class(tmp_path):
    """Class ids follow names: a validation set that lacks one class must not shift the others' ids
    (it did: ids came from each set's own sorted names, then the training names were pasted over)."""
    from edge_app.datasets import open_dataset
    from edge_app.datasets.synthetic import write_dataset
    from conversion.train import _sources

    train_dir = write_dataset(tmp_path / "train", 12, seed=1, width=160, height=120)
    val_dir = write_dataset(tmp_path / "val", 12, seed=2, width=160, height=120)
    for xml in (val_dir / "annotations").glob("*.xml"):  # no circles in the validation set
        text = xml.read_text()
        while "<name>circle</name>" in text:
            a = text.index("<object><name>circle</name>")
            text = text[:a] + text[text.index("</object>", a) + len("</object>"):]
        xml.write_text(text)
    raw_val = open_dataset(val_dir)
    assert raw_val.classes == ("square", "triangle")  # its own ids: square = 0 (training's circle id)
    cfg = TrainConfig(model="ssd", data=str(train_dir), val_data=str(val_dir), out=str(tmp_path / "o"))
    train_src, val_src = _sources(cfg)
    assert train_src.classes == val_src.classes == ("circle", "square", "triangle")
    for raw, remapped in zip(raw_val.samples, val_src.dataset.samples):
        names = [raw_val.classes[c] for c in raw.truth.classes]
        assert [val_src.classes[c] for c in remapped.truth.classes] == names  # same objects, same names
        assert 0 not in remapped.truth.classes.tolist()  # nothing became a circle
    assert any(len(s.truth) for s in val_src.dataset.samples)


def test_resume_continues_from_last_checkpoint(tmp_path):
    base = dict(data="synthetic", out=str(tmp_path), progress=False, export=False, **TINY["unet"])
    train(TrainConfig(epochs=1, **base))
    result = train(TrainConfig(epochs=2, resume=True, **base))
    assert [h["epoch"] for h in result["history"]] == [1, 2]


def test_transfer_whole_model_checkpoint_reinitialises_heads(tmp_path):
    src = build_model("unet", 5, depth=2, base=4)
    ckpt = tmp_path / "unet5.pth"
    torch.save(src.state_dict(), ckpt)
    dst = build_model("unet", 2, depth=2, base=4)
    report = transfer.load_weights(dst, ckpt, backbone=dst.backbone)
    assert any(k.startswith("classifier.weight") for k in report.skipped)  # 5 classes -> 2: head re-initialised
    assert "classifier.weight" in report.reinitialised
    assert "backbone.blocks.0.0.weight" in report.loaded
    torch.testing.assert_close(dst.state_dict()["backbone.blocks.0.0.weight"],
                               src.state_dict()["backbone.blocks.0.0.weight"])
    assert "re-initialised" in report.summary()


def test_transfer_backbone_only_imagenet_style_checkpoint(tmp_path):
    """A classification MobileNetV3 checkpoint (torchvision's format) fills DeepLab's dilated backbone."""
    import torchvision
    cls = torchvision.models.mobilenet_v3_large(weights=None)
    ckpt = tmp_path / "mobilenet_v3_large.pth"
    torch.save(cls.state_dict(), ckpt)
    model = build_model("deeplabv3", 4)
    report = transfer.load_weights(model, ckpt, backbone=model.backbone)
    first = next(k for k in model.state_dict() if k.startswith("backbone."))
    torch.testing.assert_close(model.state_dict()[first], cls.state_dict()["features.0.0.weight"])
    assert len(report.loaded) > 100 and any(k.startswith("classifier.") for k in report.reinitialised)
    assert any(k.startswith("classifier.") for k in report.skipped)  # ImageNet's classifier is not used


def test_feature_extraction_freezes_backbone_then_unfreeze_schedule(tmp_path):
    base = dict(data="synthetic", progress=False, export=False, **TINY["unet"])
    torch.manual_seed(0)
    init = build_model("unet", 4, depth=2, base=4).state_dict()
    train(TrainConfig(epochs=1, transfer="feature-extract", out=str(tmp_path / "fe"), **base))
    frozen = torch.load(tmp_path / "fe" / "last.pt", weights_only=False)["model"]
    torch.testing.assert_close(frozen["backbone.blocks.0.0.weight"], init["backbone.blocks.0.0.weight"])
    assert not torch.equal(frozen["classifier.weight"], init["classifier.weight"])
    r = train(TrainConfig(epochs=2, transfer="freeze-then-finetune", freeze_epochs=1, out=str(tmp_path / "ft"), **base))
    assert [h["backbone_trainable"] for h in r["history"]] == [False, True]


def test_ddp_two_cpu_processes(tmp_path):
    from tests.gst_helpers import free_port
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "conversion.train", "--model", "unet", "--data", "synthetic", "--synthetic-train", "8",
           "--synthetic-val", "4", "--epochs", "1", "--batch-size", "2", "--input-size", "64", "64",
           "--unet-depth", "2", "--unet-base", "4", "--out", str(tmp_path), "--no-progress", "--no-export"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "distributed: 2 processes, backend gloo" in r.stdout
    history = json.loads((tmp_path / "history.json").read_text())
    assert history[0]["epoch"] == 1
    # 8 images over 2 ranks with batch 2: 2 steps per rank per epoch
    assert torch.load(tmp_path / "last.pt", weights_only=False)["state"]["step"] == 2


def test_bad_dataset_is_a_clear_error(tmp_path):
    from conversion.train import main
    assert main(["--model", "unet", "--data", str(tmp_path / "nope"), "--no-progress"]) == 2
