"""H.264 chains: the Jetson chain feeds nvvidconv a format NVIDIA documents for its raw input (never BGR),
and its CPU part really turns our BGR frames into that format; the x264 chain encodes real frames."""
import numpy as np
import pytest

from edge_app.outputs.encoder import NVVIDCONV_RAW_INPUT, h264_chain
from tests.gst_helpers import require_gst


def _format(caps: str) -> str:
    return caps.split("format=")[1].split(",")[0]


def test_jetson_chain_feeds_nvvidconv_a_documented_raw_format():
    chain = h264_chain(2000, 30, jetson=True)
    names = [f for f, _ in chain]
    i = names.index("nvvidconv")
    factory, props = chain[i - 1]
    assert factory == "capsfilter" and "memory:NVMM" not in props["caps"]
    assert _format(props["caps"]) in NVVIDCONV_RAW_INPUT and "BGR" not in NVVIDCONV_RAW_INPUT
    assert names[i + 2] == "nvv4l2h264enc" and _format(chain[i + 1][1]["caps"]) == "I420"
    assert chain[names.index("nvv4l2h264enc")][1]["bitrate"] == 2_000_000  # bits/s there, kbit/s for x264


@pytest.mark.slow
def test_the_cpu_part_of_the_jetson_chain_makes_bgrx_from_our_frames():
    require_gst()
    from edge_app.outputs.encoder import frame_caps, link_all, push
    from edge_app.gst import caps, gst, make
    Gst = gst().Gst
    chain = h264_chain(2000, 30, jetson=True)
    cpu = chain[:chain.index(next(c for c in chain if c[0] == "nvvidconv"))]  # up to nvvidconv
    pipeline = Gst.Pipeline.new("t")
    src = make("appsrc", format=3, is_live=False)
    src.set_property("caps", frame_caps(64, 48, 30))
    elements = [make(f, **{k: caps(v) if k == "caps" else v for k, v in p.items()}) for f, p in cpu]
    sink = make("appsink", sync=False)
    link_all(pipeline, [src, *elements, sink])
    pipeline.set_state(Gst.State.PLAYING)
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 2] = 200  # red in BGR
    push(src, frame, 0, 33_000_000)
    sample = sink.emit("try-pull-sample", 5 * Gst.SECOND)
    pipeline.set_state(Gst.State.NULL)
    assert sample is not None
    assert sample.get_caps().get_structure(0).get_value("format") == "BGRx"
    buf = sample.get_buffer()
    data = np.frombuffer(buf.extract_dup(0, buf.get_size()), np.uint8).reshape(48, 64, 4)
    assert (data[..., 2] == 200).all() and (data[..., :2] == 0).all()  # the same pixels, one more byte
