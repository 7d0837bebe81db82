"""Replay of labelled datasets and the synthetic demo source: labels travel with frames."""
import time

import numpy as np

from edge_app.sources import SourceConfig, open_source
from tests.gst_helpers import read_frames


def test_synthetic_frames_carry_exact_labels():
    src = open_source(SourceConfig("synthetic://", width=320, height=240, fps=60, seed=3)).start()
    try:
        frames = read_frames(src, 0.5)
    finally:
        src.stop()
    assert frames
    f = frames[-1]
    assert f.image.shape == (240, 320, 3)
    assert f.labels.truth is not None and f.labels.mask.shape == (240, 320)
    for box, cls in zip(f.labels.truth.boxes, f.labels.truth.classes):
        x1, y1, x2, y2 = box.astype(int)
        inside = f.labels.mask[y1:y2, x1:x2]
        assert (inside == cls + 1).any()  # the mask agrees with the box's class


def test_replay_voc_labels(shared_data):
    src = open_source(SourceConfig(f"replay://{shared_data / 'raccoon'}", fps=100, loop=False)).start()
    try:
        frames = read_frames(src, 1.0)
    finally:
        src.stop()
    assert len(frames) > 5
    f = frames[0]
    assert f.labels.classes == ("raccoon",) and len(f.labels.truth) >= 1
    assert f.labels.truth.boxes[:, 2].max() <= f.image.shape[1]


def test_replay_masks_with_ignore_index(shared_data):
    src = open_source(SourceConfig(f"replay://{shared_data / 'camvid' / 'val'}", fps=50, loop=False)).start()
    try:
        f = src.read(5.0)
    finally:
        src.stop()
    assert f.labels.mask.shape == f.image.shape[:2]
    assert f.labels.ignore_index == 11 and len(f.labels.mask_classes) == 11


def test_replay_skips_corrupt_image(tmp_path):
    import cv2
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "images" / f"{i}.jpg"), np.full((40, 50, 3), 100, np.uint8))
        (tmp_path / "annotations" / f"{i}.xml").write_text(
            f"<annotation><filename>{i}.jpg</filename><size><width>50</width><height>40</height></size>"
            "<object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>20</ymax>"
            "</bndbox></object></annotation>")
    (tmp_path / "images" / "1.jpg").write_bytes(b"\xff\xd8 truncated")
    src = open_source(SourceConfig(f"replay://{tmp_path}", fps=200, loop=False, realtime=False)).start()  # every frame
    frames = read_frames(src, 0.5)
    src.stop()
    assert len(frames) == 2
    assert src.stats.bad_frames == 1 and "1.jpg" in src.stats.last_error


def test_synthetic_not_realtime_hands_over_every_frame():
    # realtime=False: no pacing, the producer waits for the pipeline; a slow reader misses nothing.
    from edge_app.sources.synthetic import SyntheticSource

    src = SyntheticSource("synthetic://", width=96, height=64, fps=1.0, max_frames=12, realtime=False).start()
    got = []
    try:
        deadline = time.monotonic() + 5  # paced at fps=1, 12 frames would take 11 s
        while len(got) < 12 and time.monotonic() < deadline:
            f = src.read(0.5)
            if f is not None:
                got.append(f.index)
                time.sleep(0.05)
    finally:
        src.stop()
    assert got == list(range(12)) and src.stats.dropped == 0
