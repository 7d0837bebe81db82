"""appsrc -> H.264 encoder chains built element by element (hardware encoder on a Jetson that has one)."""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from ..stream.gst import caps, gst, has_element, make


def frame_caps(width: int, height: int, fps: float) -> Any:
    f = Fraction(fps).limit_denominator(1001)
    return caps(f"video/x-raw,format=BGR,width={int(width)},height={int(height)},"
                f"framerate={f.numerator}/{f.denominator}")


def h264_elements(bitrate_kbps: int, fps: float) -> list[Any]:
    """Conversion to I420 (browsers and players reject 4:4:4) and an H.264 encoder, low latency."""
    if has_element("nvv4l2h264enc") and has_element("nvvidconv"):
        return [make("nvvidconv"), make("capsfilter", caps=caps("video/x-raw(memory:NVMM),format=I420")),
                make("nvv4l2h264enc", bitrate=int(bitrate_kbps) * 1000, insert_sps_pps=True),
                make("h264parse")]
    enc = make("x264enc", bitrate=int(bitrate_kbps), key_int_max=max(1, int(round(fps * 2))),
               byte_stream=False)
    enc.set_property("tune", "zerolatency")
    enc.set_property("speed-preset", "ultrafast")
    return [make("videoconvert"), make("capsfilter", caps=caps("video/x-raw,format=I420")), enc,
            make("h264parse")]


def link_all(bin_: Any, elements: list[Any]) -> None:
    for el in elements:
        bin_.add(el)
    for a, b in zip(elements, elements[1:]):
        if not a.link(b):
            raise RuntimeError(f"cannot link {a.get_name()} -> {b.get_name()}")


def push(appsrc: Any, image: np.ndarray, pts_ns: int, duration_ns: int) -> Any:
    """Copy a BGR frame into a new buffer (one memcpy) and push it; returns the FlowReturn."""
    Gst = gst().Gst
    data = np.ascontiguousarray(image)
    buf = Gst.Buffer.new_allocate(None, data.nbytes, None)
    buf.fill(0, data.tobytes())
    buf.pts = pts_ns
    buf.dts = pts_ns
    buf.duration = duration_ns
    return appsrc.emit("push-buffer", buf)
