"""Transfer learning from the shipped demo detector weights (torchvision format) keeps AP50 >= 0.9 on
held-out synthetic scenes after a short fine-tune: this tests the shipped weights, the weight loading and
a fine-tuning step, not learning from scratch (that takes ~25 min on 2 cores for the demo recipe; the
from-scratch floor is test_train_export.py::test_unet_learns_from_scratch_above_a_floor)."""
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the train extra is needed")

from conversion.train import TrainConfig, train  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[2] / "edge_app" / "demo" / "detector.weights.pt"
pytestmark = pytest.mark.slow


@pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"{WEIGHTS} not built (make demo-models)")
def test_finetuning_from_the_shipped_weights_keeps_ap50_0_9_on_held_out_scenes(tmp_path):
    cfg = TrainConfig(model="ssd", data="synthetic", synthetic_train=32, synthetic_val=40, synthetic_size=(640, 480),
                      epochs=1, batch_size=8, lr=1e-4, weights=str(WEIGHTS), transfer="finetune", seed=123,
                      out=str(tmp_path), progress=False)
    result = train(cfg)
    ap50 = result["best_metrics"]["AP50"]
    assert ap50 >= 0.9, f"AP50 {ap50:.3f} on 40 held-out synthetic scenes"
    assert result["export"]["parity_max_abs_diff"] <= 1e-4
