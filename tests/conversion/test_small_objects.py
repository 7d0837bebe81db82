"""The small-object options of ssdlite-mobilenet-v2: a stride-8 map, anchor scales from the training boxes,
any input size; and the mosaic set they are measured on."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is needed")

from conversion.anchor_scales import dataset_box_sizes, scales_from_boxes  # noqa: E402
from conversion.models import build_model  # noqa: E402
from conversion.models.ssd import SSDExport  # noqa: E402
from conversion.small_objects import write_mosaics  # noqa: E402
from conversion.train import TrainConfig, parse_args, train  # noqa: E402
from edge_app.core.artifact import read_meta  # noqa: E402
from edge_app.datasets import open_dataset  # noqa: E402


def test_scales_are_quantiles_of_the_box_sizes():
    rng = np.random.default_rng(0)
    side = rng.uniform(0.02, 0.12, 5000)
    scales = scales_from_boxes(np.stack([side, side], 1), 6)
    assert len(scales) == 7 and all(b > a for a, b in zip(scales, scales[1:]))
    # uniform sides: the 5 % and 98 % quantiles are 0.02 + 0.1 * q
    assert scales[0] == pytest.approx(0.025, abs=0.003) and scales[-1] == pytest.approx(0.118, abs=0.003)
    with pytest.raises(ValueError, match="at least 2 boxes"):
        scales_from_boxes(np.zeros((1, 2)) + 0.1, 6)


def test_the_stride8_map_adds_its_anchors_and_exports(tmp_path):
    model = build_model("ssdlite-mobilenet-v2", 3, input_size=(128, 160), stride8=True).eval()
    maps = list(model.backbone(torch.zeros(1, 3, 128, 160)).values())
    assert [m.shape[1] for m in maps] == [192, 576, 1280, 512, 256, 256, 128]
    assert maps[0].shape[-2:] == (16, 20) and maps[1].shape[-2:] == (8, 10)  # strides 8 and 16
    cells = sum(m.shape[-2] * m.shape[-1] for m in maps)
    with torch.no_grad():
        boxes, scores = SSDExport(model)(torch.zeros(1, 3, 128, 160))
    assert boxes.shape == (1, cells * 6, 4) and scores.shape == (1, cells * 6, 3)  # six boxes per cell
    assert float(boxes[..., 0::2].max()) <= 160 and float(boxes[..., 1::2].max()) <= 128
    with pytest.raises(ValueError, match="expected 8 values"):
        build_model("ssdlite-mobilenet-v2", 3, stride8=True, scales=[0.1, 0.2])


def test_mosaics_hold_small_objects_and_auto_scales_follow_them(tmp_path):
    root = write_mosaics(tmp_path / "mos", 4, seed=3)
    ds = open_dataset(root)
    assert len(ds) == 4 and ds.issues.summary() == "labels: no problems found"
    rel = np.sqrt(dataset_box_sizes(ds.samples).prod(1))
    assert len(rel) >= 8 and rel.max() < 0.2  # every object below SSDLite's first default box (0.2)
    cfg = TrainConfig(model="ssdlite-mobilenet-v2", data=str(root), val_data=str(root), epochs=1, batch_size=2,
                      input_size=(128, 128), out=str(tmp_path / "run"), progress=False,
                      extra={"stride8": True, "anchor_scales": "auto"})
    result = train(cfg)
    meta = read_meta(tmp_path / "run" / "model.onnx")
    scales = meta.extra["training"]["config"]["extra"]["anchor_scales"]
    assert len(scales) == 8 and scales[0] >= rel.min() - 1e-3 and scales[-1] <= rel.max() + 1e-3
    assert result["export"]["parity_max_abs_diff"] <= 1e-4


def test_the_command_line_options(tmp_path):
    cfg = parse_args(["--model", "ssdlite-mobilenet-v2", "--stride8", "--anchor-scales", "auto",
                      "--input-size", "480", "480"])
    assert cfg.extra == {"stride8": True, "anchor_scales": "auto"} and cfg.input_size == (480, 480)
    assert parse_args(["--model", "deeplabv3-mobilenet-v2", "--output-stride", "8"]).extra == {"output_stride": 8}
    with pytest.raises(SystemExit, match="options of --model ssdlite-mobilenet-v2"):
        parse_args(["--model", "ssd", "--stride8"])
