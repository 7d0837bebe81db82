"""Synthetic scenes: exact labels, and the cached held-out set that build and calibrate share."""
import os
import shutil

import numpy as np

from edge_app.datasets import open_dataset
from edge_app.datasets.synthetic import make_sample, validation_dir


def test_mask_and_boxes_agree():
    s = make_sample(np.random.default_rng(3), 320, 240)
    assert s.image.shape == (240, 320, 3) and s.mask.shape == (240, 320)
    for box, cls in zip(s.truth.boxes, s.truth.classes):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        # the class is drawn inside its box (shapes may overlap, so not necessarily everywhere)
        assert (s.mask[y1:y2 + 1, x1:x2 + 1] == cls + 1).any()


def test_validation_set_is_written_once_into_the_cache(tmp_path):
    training = {"synthetic_val": 5, "seed": 2, "synthetic_size": [160, 120]}
    root = validation_dir(training, 64, 64, cache=tmp_path)
    assert root.is_relative_to(tmp_path)
    ds = open_dataset(root, task="detection")
    assert len(ds.samples) == 5
    first = sorted((p.name, p.stat().st_mtime_ns) for p in (root / "images").iterdir())
    # the same request reuses the files; nothing half-written is left beside them
    again = validation_dir(training, 64, 64, cache=tmp_path)
    assert again == root
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (root / "images").iterdir()) == first
    assert not [p for p in root.parent.iterdir() if ".tmp" in p.name]
    # another count or seed is another set
    other = validation_dir({**training, "seed": 3}, 64, 64, cache=tmp_path)
    assert other != root and len(os.listdir(other / "images")) == 5


def test_an_interrupted_writer_leaves_nothing_that_is_reused(tmp_path):
    # The set appears under its name only by a rename once complete; what an interrupted writer leaves
    # is a temp folder, which a later call ignores and writes the set whole.
    training = {"synthetic_val": 3, "seed": 0}
    root = validation_dir(training, 64, 48, cache=tmp_path)
    shutil.rmtree(root)
    leftover = root.with_name(root.name + ".tmp999999")
    (leftover / "images").mkdir(parents=True)
    again = validation_dir(training, 64, 48, cache=tmp_path)
    assert again == root and len(os.listdir(again / "images")) == 3
