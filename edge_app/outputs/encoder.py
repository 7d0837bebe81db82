"""appsrc -> H.264 encoder chains built element by element (hardware encoder on a Jetson that has one)."""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from ..gst import caps, gst, has_element, make


def frame_caps(width: int, height: int, fps: float) -> Any:
    f = Fraction(fps).limit_denominator(1001)
    return caps(f"video/x-raw,format=BGR,width={int(width)},height={int(height)},"
                f"framerate={f.numerator}/{f.denominator}")


# Raw (system memory) input formats of Jetson's nvvidconv, from NVIDIA's Jetson Linux "Accelerated
# GStreamer" guide (the nvvidconv format table): packed BGR/RGB are not among them, so the annotated BGR
# frames are turned into BGRx first (a cheap CPU repack; nvvidconv's VIC hardware then does the YUV).
NVVIDCONV_RAW_INPUT = ("I420", "UYVY", "YUY2", "YVYU", "NV12", "NV16", "NV24", "GRAY8", "BGRx", "RGBA", "Y42B")


def h264_chain(bitrate_kbps: int, fps: float, jetson: bool) -> list[tuple[str, dict[str, Any]]]:
    """(factory, properties) from BGR frames to parsed H.264: Jetson's hardware encoder when ``jetson``
    (BGR -> BGRx -> nvvidconv -> NVMM I420 -> nvv4l2h264enc), else x264 (BGR -> I420: browsers and
    players reject 4:4:4), low latency. Decided without GStreamer, so it is tested everywhere."""
    if jetson:
        return [("videoconvert", {}), ("capsfilter", {"caps": "video/x-raw,format=BGRx"}),
                ("nvvidconv", {}), ("capsfilter", {"caps": "video/x-raw(memory:NVMM),format=I420"}),
                ("nvv4l2h264enc", {"bitrate": int(bitrate_kbps) * 1000, "insert_sps_pps": True}),
                ("h264parse", {})]
    return [("videoconvert", {}), ("capsfilter", {"caps": "video/x-raw,format=I420"}),
            ("x264enc", {"bitrate": int(bitrate_kbps), "key_int_max": max(1, int(round(fps * 2))),
                         "byte_stream": False, "tune": "zerolatency", "speed-preset": "ultrafast"}),
            ("h264parse", {})]


def h264_elements(bitrate_kbps: int, fps: float) -> list[Any]:
    """The chain of ``h264_chain`` made into elements (the hardware one where the Jetson elements exist)."""
    jetson = has_element("nvv4l2h264enc") and has_element("nvvidconv")
    elements = []
    for factory, props in h264_chain(bitrate_kbps, fps, jetson):
        props = dict(props)
        if "caps" in props:
            props["caps"] = caps(props["caps"])
        enum_props = {k: props.pop(k) for k in ("tune", "speed-preset") if k in props}  # set by nick
        el = make(factory, **props)
        for key, value in enum_props.items():
            el.set_property(key, value)
        elements.append(el)
    return elements


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
