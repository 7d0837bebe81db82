"""The imported MobileNetV2 backbone (``backbone.npz``) and the two MobileNetV2 models that take it.

Without TensorFlow: the mapping's key table against torchvision's real ``mobilenet_v2().features``; a
``.npz`` written here from a real torchvision MobileNetV2 loads into both models by name and the trunks
then compute what torchvision's own MobileNetV2 computes; tiny training + export + runtime of both with
``--weights`` (the load report), the transfer modes; bad files named. With a TensorFlow venv (found at
$EDGE_VISION_TF_PYTHON, var/venvs/import or /tmp/tfvenv): the real graph's mapping reproduces TF's own
activations on a real frame.
"""
import io
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is needed")
torchvision = pytest.importorskip("torchvision", reason="the train extra (torchvision) is needed")

from conversion import transfer  # noqa: E402
from conversion.importers.backbone import expected_keys  # noqa: E402
from conversion.models import build_model  # noqa: E402
from conversion.train import TrainConfig, train  # noqa: E402
from edge_app.inference.models import open_artifact  # noqa: E402
from edge_app.datasets.synthetic import SyntheticVideo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PB = ROOT / "var" / "import" / "pedestrian_ssdlite.pb"
FRAME = ROOT.parent / "shared" / "data" / "raccoon" / "images" / "raccoon-1.jpg"
TF_PYTHON = next((p for p in [os.environ.get("EDGE_VISION_TF_PYTHON", ""), str(ROOT / "var/venvs/import/bin/python"),
                              "/tmp/tfvenv/bin/python"] if p and Path(p).is_file()), None)
# Measured here: max |torch - TF| 1.3e-5 on expanded_conv_13/expansion_output (values 0..6, ReLU6),
# 1.1e-5 on expanded_conv_16/output (|x| <= 13), 5.4e-6 on Conv_1 (raccoon-1.jpg at 289x289).
PARITY_TOLERANCE = 1e-4


def _torchvision_npz(path: Path, seed: int = 0) -> "torch.nn.Module":
    """A real torchvision MobileNetV2 with seeded random weights and non-trivial BN statistics, saved as
    the importer saves (features.* keys, numpy arrays); returns the model in eval mode."""
    torch.manual_seed(seed)
    net = torchvision.models.mobilenet_v2(weights=None)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    sd = {k: v.numpy() for k, v in net.state_dict().items() if k.startswith("features.")}
    buf = io.BytesIO()
    np.savez(buf, **sd)
    path.write_bytes(buf.getvalue())
    return net.eval()


def test_the_mapping_table_names_every_key_of_torchvisions_features():
    real = {k: tuple(v.shape) for k, v in torchvision.models.mobilenet_v2(weights=None).state_dict().items()
            if k.startswith("features.")}
    assert sorted(expected_keys()) == sorted(real) and len(real) == 312


@pytest.mark.parametrize("name, loaded, skipped", [("ssdlite-mobilenet-v2", 312, 0),
                                                   ("deeplabv3-mobilenet-v2", 306, 6)])
def test_an_npz_of_torchvision_names_fills_the_trunk(tmp_path, name, loaded, skipped):
    ref = _torchvision_npz(tmp_path / "backbone.npz")
    model = build_model(name, 3).eval()
    report = transfer.load_weights(model, tmp_path / "backbone.npz", backbone=transfer.backbone_of(model))
    assert len(report.loaded) == loaded and all(k.startswith("backbone.features.") for k in report.loaded)
    assert len(report.skipped) == skipped and all(k.startswith("features.18.") for k in report.skipped)
    assert not any(k.startswith("backbone.features.") for k in report.reinitialised)
    x = torch.rand(1, 3, 97, 129) * 2 - 1
    with torch.no_grad():
        if name.startswith("ssd"):
            maps = list(model.backbone(x).values())
            # the stride-16 map is block 13's expansion output and the stride-32 one the 1280-ch output
            torch.testing.assert_close(maps[0], ref.features[14].conv[0](ref.features[:14](x)))
            torch.testing.assert_close(maps[1], ref.features(x))
        else:  # output stride 16: the same weights, dilated instead of strided; block 13 is still exact
            torch.testing.assert_close(model.backbone.features[:14](x), ref.features[:14](x))
            assert model.backbone(x).shape[-2:] == ref.features[:14](x).shape[-2:]


def test_a_bad_npz_is_named(tmp_path):
    bad = tmp_path / "backbone.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"backbone.npz: not a .npz of named arrays"):
        transfer.load_weights(build_model("deeplabv3-mobilenet-v2", 2), bad)


@pytest.mark.parametrize("name, size", [("ssdlite-mobilenet-v2", (160, 192)), ("deeplabv3-mobilenet-v2", (64, 96))])
def test_tiny_training_with_weights_exports_and_runs(tmp_path, name, size, capsys):
    ref = _torchvision_npz(tmp_path / "backbone.npz")
    cfg = TrainConfig(model=name, data="synthetic", synthetic_train=4, synthetic_val=2, batch_size=2, input_size=size,
                      epochs=2, out=str(tmp_path / "run"), progress=False, weights=str(tmp_path / "backbone.npz"),
                      transfer="freeze-then-finetune", freeze_epochs=1)
    result = train(cfg)
    log = capsys.readouterr().out
    assert ("weights: 312 tensors loaded, 0 skipped" if name.startswith("ssd") else
            "weights: 306 tensors loaded, 6 skipped") in log  # deeplab: features.18 (1x1 to 1280) unused
    assert [h["backbone_trainable"] for h in result["history"]] == [False, True]
    assert result["export"]["parity_max_abs_diff"] <= 1e-4
    model = open_artifact(tmp_path / "run" / "model.onnx", score_threshold=0.0)
    assert model.meta.input_size == size and model.meta.mean == (0.5, 0.5, 0.5)
    out = model.predict(SyntheticVideo(200, 150, seed=1).next().image)
    if name.startswith("ssd"):
        assert out.detections is not None and (out.detections.boxes[:, 2] <= 200).all()
    else:
        assert out.mask.labels.shape == (150, 200)
    # epoch 1 was frozen: the trunk's first conv moved only in epoch 2, at 0.1x the head's rate
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"]["backbone.features.0.0.weight"]
    assert not torch.equal(first, ref.features[0][0].weight)


def test_feature_extraction_trains_the_new_extra_layers_but_not_the_trunk(tmp_path):
    _torchvision_npz(tmp_path / "backbone.npz")
    cfg = TrainConfig(model="ssdlite-mobilenet-v2", data="synthetic", synthetic_train=4, synthetic_val=2,
                      batch_size=2, input_size=(128, 128), epochs=1, out=str(tmp_path / "fe"), progress=False,
                      export=False, weights=str(tmp_path / "backbone.npz"), transfer="feature-extract")
    train(cfg)
    after = torch.load(tmp_path / "fe" / "last.pt", weights_only=False)["model"]
    loaded = {k: torch.from_numpy(v) for k, v in np.load(tmp_path / "backbone.npz").items()}
    torch.testing.assert_close(after["backbone.features.5.conv.1.0.weight"], loaded["features.5.conv.1.0.weight"])
    torch.testing.assert_close(after["backbone.features.5.conv.1.1.running_mean"],
                               loaded["features.5.conv.1.1.running_mean"])  # frozen BN keeps its statistics
    # the extra blocks are new layers inside torchvision's SSD backbone: they train (BN statistics move)
    assert after["backbone.extra.0.0.1.running_mean"].abs().sum() > 0
    assert after["backbone.extra.0.0.1.num_batches_tracked"] > 0


@pytest.mark.skipif(TF_PYTHON is None, reason="needs a TensorFlow venv (make import-env, or set EDGE_VISION_TF_PYTHON)")
@pytest.mark.skipif(not PB.is_file() or not FRAME.is_file(),
                    reason="needs var/import/pedestrian_ssdlite.pb (make demo-people) and ../shared/data/raccoon")
def test_the_imported_backbone_reproduces_tensorflows_activations(tmp_path):
    """Independent reference: TensorFlow running the frozen graph itself. 289x289 is odd at every stride-2
    layer (289, 145, 73, 37, 19), where TF's SAME padding is symmetric like torch's; at 300 TF pads
    bottom/right only and the two differ (checked too, so the choice of size is what makes it agree)."""
    img = cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)
    names = ["FeatureExtractor/MobilenetV2/expanded_conv_13/expansion_output",
             "FeatureExtractor/MobilenetV2/expanded_conv_16/output", "FeatureExtractor/MobilenetV2/Conv_1/Relu6"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    net = torchvision.models.mobilenet_v2(weights=None).eval()
    for size in (289, 300):
        x = (cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) * (2 / 255) - 1)[None]
        np.save(tmp_path / "x.npy", x)
        r = subprocess.run([TF_PYTHON, "-m", "conversion.importers.backbone", str(PB), "--out", str(tmp_path / "b.npz"),
                            "--probe", str(tmp_path / "x.npy"), "--probe-out", str(tmp_path / "a.npz"),
                            "--probe-names", ",".join(names)], capture_output=True, text=True, env=env, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-2000:]
        assert json.loads(r.stdout.strip().splitlines()[-1])["unfilled"] == 0
        report = transfer.load_weights(net, tmp_path / "b.npz")
        assert len(report.loaded) == 312 and report.reinitialised == ["classifier.1.weight", "classifier.1.bias"]
        acts = np.load(tmp_path / "a.npz")
        t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        with torch.no_grad():
            h13 = net.features[:14](t)
            ours = [net.features[14].conv[0](h13), net.features[14:18](h13), net.features(t)]
        diffs = [float(np.abs(acts[n.replace("/", "|")].transpose(0, 3, 1, 2) - o.numpy()).max())
                 for n, o in zip(names, ours)]
        if size == 289:
            assert max(diffs) <= PARITY_TOLERANCE, diffs
        else:
            assert min(diffs) > 0.1, diffs  # asymmetric SAME padding: not comparable at 300


@pytest.mark.parametrize("output_stride", [8, 16])
def test_the_dilated_trunk_keeps_its_resolution(output_stride):
    model = build_model("deeplabv3-mobilenet-v2", 5, output_stride=output_stride).eval()
    with torch.no_grad():
        assert model.backbone(torch.zeros(1, 3, 128, 96)).shape == (1, 320, 128 // output_stride, 96 // output_stride)
        assert model(torch.zeros(1, 3, 128, 96)).shape == (1, 5, 128, 96)
    rates = [m.dilation[0] for m in model.backbone.features.modules()
             if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert max(rates) == 32 // output_stride  # the last stage dilated by 2 (os 16) or 4 (os 8)
