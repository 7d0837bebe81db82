"""The live view's frame hub: frames are JPEG-encoded lazily, once, and only for someone who asks."""
import threading
import urllib.request

import cv2
import numpy as np

from edge_app.core.types import Frame
from edge_app.outputs.http import HttpOutput
from edge_app.serve.web import FrameHub


def _image(i: int) -> np.ndarray:
    img = np.zeros((60, 80, 3), np.uint8)
    cv2.putText(img, str(i), (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    return img


def _encode(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()  # lossless: the decoded frame can be compared


def test_nothing_is_encoded_without_a_viewer_and_each_frame_once():
    hub = FrameHub(_encode)
    for i in range(5):
        hub.offer(_image(i))
    assert hub.encoded == 0
    seq, data = hub.wait_newer(-1, 0)  # a snapshot
    assert seq == 5 and hub.encoded == 1
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), _image(4))
    assert hub.wait_newer(-1, 0) == (seq, data) and hub.encoded == 1  # cached


def test_several_viewers_share_one_encode_per_frame():
    hub = FrameHub(_encode)
    hub.offer(_image(0))
    got: list[tuple[int, bytes]] = []
    ready = threading.Barrier(4)

    def viewer() -> None:
        ready.wait()
        got.append(hub.wait_newer(1, 5.0))

    threads = [threading.Thread(target=viewer) for _ in range(3)]
    for t in threads:
        t.start()
    ready.wait()
    hub.offer(_image(7))
    for t in threads:
        t.join(5)
    assert len(got) == 3 and {g[0] for g in got} == {2}
    assert len({g[1] for g in got}) == 1
    assert hub.encoded == 1


def test_http_output_snapshot_is_the_newest_frame():
    out = HttpOutput(host="127.0.0.1", port=0, token="", jpeg_quality=90, status=lambda: {})
    try:
        for i in range(3):
            out.write(_image(i), Frame(_image(i), i, 0.0, 0.0))
        assert out.hub.encoded == 0
        with urllib.request.urlopen(out.url + "snapshot.jpg", timeout=5) as r:
            jpeg = r.read()
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (60, 80, 3)
        assert np.abs(img.astype(int) - _image(2)).mean() < np.abs(img.astype(int) - _image(1)).mean()
        assert out.hub.encoded == 1
    finally:
        out.close()
