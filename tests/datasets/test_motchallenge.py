"""MOTChallenge readers: unsorted rows are fine, malformed ones are named with file and line."""
import numpy as np
import pytest

from edge_app.datasets.motchallenge import MotFormatError, detections_by_frame, read_mot, read_seqinfo, write_tracks
from edge_app.core.types import Tracks


def test_unsorted_rows_are_sorted_and_every_frame_is_listed(tmp_path):
    p = tmp_path / "det.txt"
    p.write_text("3,-1,10,10,5,5,0.9\n1,-1,0,0,4,4,0.5\n3,-1,20,20,5,5,0.8\n")
    rows = read_mot(p)
    assert rows.frames.tolist() == [1, 3, 3]
    frames = detections_by_frame(rows, length=4)
    assert [f for f, _ in frames] == [1, 2, 3, 4] and [len(d) for _, d in frames] == [1, 0, 2, 0]
    np.testing.assert_allclose(frames[0][1].boxes, [[0, 0, 4, 4]])  # xywh -> xyxy


@pytest.mark.parametrize("text, message", [
    ("1,-1,0,0,4\n", "det.txt:1: expected at least 6"),
    ("1,-1,0,0,4,4,0.9\n2,-1,0,0,4,4\n", "det.txt:2: 6 columns, earlier rows have 7"),
    ("1,-1,0,0,4,4,0.9\n1.5,-1,0,0,4,4,0.9\n", "det.txt:2: frame '1.5' is not a positive integer"),
    ("0,-1,0,0,4,4,0.9\n", "det.txt:1: frame '0' is not a positive integer"),
    ("1,-1,0,0,-4,4,0.9\n", "det.txt:1: negative box size"),
    ("1,-1,0,zero,4,4,0.9\n", "det.txt:1: non-numeric field"),
])
def test_malformed_rows_are_named(tmp_path, text, message):
    p = tmp_path / "det.txt"
    p.write_text(text)
    with pytest.raises(MotFormatError, match=message.replace(".", r"\.").replace("(", r"\(")):
        read_mot(p)


def test_seqinfo_and_round_trip(tmp_path):
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=s\nframeRate=14\nseqLength=9\nimWidth=640\nimHeight=480\n")
    info = read_seqinfo(tmp_path / "seqinfo.ini")
    assert (info.frame_rate, info.length, info.width) == (14.0, 9, 640)
    tr = Tracks(np.array([[10, 20, 40, 80]], np.float32), [7], [0], [0.5])
    write_tracks(tmp_path / "t.txt", [(1, tr), (2, Tracks.empty())])
    back = read_mot(tmp_path / "t.txt")
    assert back.ids.tolist() == [7] and back.boxes.tolist() == [[10, 20, 30, 60]]
    (tmp_path / "bad.ini").write_text("[Sequence]\nname=s\n")
    with pytest.raises(MotFormatError, match="seqLength"):
        read_seqinfo(tmp_path / "bad.ini")
