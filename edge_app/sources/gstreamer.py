"""GStreamer sources: v4l2://, csi://, rtsp://, file://, test:// -> BGR frames through an appsink.

Pipelines are built element by element; every configured value is set as a property (a file name is
turned into a URI by GStreamer itself), so nothing from the config is ever parsed as pipeline syntax.
appsink keeps one buffer and drops older ones (max-buffers=1, drop=true): the newest frame wins; a file
played with realtime=False instead blocks the decoder until the pipeline took the frame (no drop=true,
back-pressure), so no frame is lost and none is decoded in vain.
A lost source (error, EOS on a live source, no frame for a while) is torn down and rebuilt with
exponential back-off; the process never exits for it.

Frame indices: a file's frames are numbered by stream position (PTS x frame rate), so a frame keeps its
number whatever the appsink dropped, and numbering starts again when the file loops (the labels file of
a recorded video is looked up by it). Live sources count the frames they deliver.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..config.schema import SourceConfig
from ..core.types import Frame
from ..core.uri import local_path
from ..gst import caps, gst, has_element, make
from .base import Backoff, FrameSource

log = logging.getLogger("edge_app.source")

_RTSP_TCP, _RTSP_UDP = 4, 1  # GstRtspLowerTrans flags


def _fps_fraction(fps: float) -> str:
    f = Fraction(fps).limit_denominator(1001)
    return f"{f.numerator}/{f.denominator}"


def _converter_chain(pipeline: Any, s: SourceConfig) -> tuple[Any, Any]:
    """Elements from decoded video to BGR at the configured size; Jetson's nvvidconv when present."""
    elements = []
    if has_element("nvvidconv"):
        elements += [make("nvvidconv"), make("capsfilter", caps=caps("video/x-raw,format=BGRx"))]
    # Scale first: the decoder's planar YUV is cheaper to scale than BGR, and the colour conversion then
    # runs on the smaller frame.
    elements += [make("videoscale"), make("videoconvert"),
                 make("capsfilter", caps=caps(f"video/x-raw,format=BGR,width={int(s.width)},"
                                              f"height={int(s.height)},pixel-aspect-ratio=1/1"))]
    for el in elements:
        pipeline.add(el)
    for a, b in zip(elements, elements[1:]):
        a.link(b)
    return elements[0], elements[-1]


def _link_dynamic(src: Any, sink_pad_owner: Any) -> None:
    """Link a demuxer/decodebin's video pad when it appears."""
    def on_pad(_el: Any, pad: Any) -> None:
        c = pad.get_current_caps() or pad.query_caps(None)
        if c is None or not c.get_structure(0).get_name().startswith("video/"):
            return
        sink = sink_pad_owner.get_static_pad("sink")
        if not sink.is_linked():
            pad.link(sink)
    src.connect("pad-added", on_pad)


def _build_uri(pipeline: Any, uri: str, s: SourceConfig) -> tuple[Any, bool]:
    dec = make("uridecodebin", uri=uri)
    is_rtsp = uri.startswith(("rtsp://", "rtsps://"))
    if is_rtsp:
        def setup(_bin: Any, source: Any) -> None:
            if source.find_property("latency") is not None:
                source.set_property("latency", int(s.rtsp_latency_ms))
            if source.find_property("protocols") is not None:
                source.set_property("protocols", _RTSP_TCP if s.rtsp_transport == "tcp" else _RTSP_UDP)
        dec.connect("source-setup", setup)
    pipeline.add(dec)
    first, last = _converter_chain(pipeline, s)
    _link_dynamic(dec, first)
    return last, is_rtsp


def build_file(pipeline: Any, uri: str, s: SourceConfig) -> tuple[Any, bool]:
    path = local_path(uri)
    assert path is not None  # open_source made it absolute
    # GStreamer escapes the name: '! filesink ...' stays part of a (missing) file name.
    file_uri = gst().Gst.filename_to_uri(str(path.resolve()))
    last, _ = _build_uri(pipeline, file_uri, s)
    return last, False


def build_rtsp(pipeline: Any, uri: str, s: SourceConfig) -> tuple[Any, bool]:
    last, _ = _build_uri(pipeline, uri, s)
    return last, True


def _live_src(pipeline: Any, src: Any, memory: str, s: SourceConfig) -> Any:
    """A live source element constrained to the configured size and rate, then converted to BGR."""
    cf = make("capsfilter", caps=caps(f"video/x-raw{memory},width={int(s.width)},height={int(s.height)},"
                                      f"framerate={_fps_fraction(s.fps)}"))
    for el in (src, cf):
        pipeline.add(el)
    src.link(cf)
    first, last = _converter_chain(pipeline, s)
    cf.link(first)
    return last


def build_test(pipeline: Any, uri: str, s: SourceConfig) -> tuple[Any, bool]:
    pattern = urlsplit(uri).netloc or "ball"
    src = make("videotestsrc", is_live=True)
    src.set_property("pattern", pattern if pattern in ("ball", "smpte", "snow", "black") else "ball")
    return _live_src(pipeline, src, "", s), True


def build_v4l2(pipeline: Any, uri: str, s: SourceConfig) -> tuple[Any, bool]:
    parts = urlsplit(uri)
    device = parts.path or "/dev/video0"
    src = make("v4l2src", device=device)
    dec = make("decodebin")  # raw, MJPEG or H.264 cameras alike
    for el in (src, dec):
        pipeline.add(el)
    src.link(dec)
    first, last = _converter_chain(pipeline, s)
    _link_dynamic(dec, first)
    return last, True


def build_csi(pipeline: Any, uri: str, s: SourceConfig) -> tuple[Any, bool]:
    sensor = int(urlsplit(uri).netloc or 0)
    return _live_src(pipeline, make("nvarguscamerasrc", sensor_id=sensor), "(memory:NVMM)", s), True


BUILDERS: dict[str, Callable[[Any, str, SourceConfig], tuple[Any, bool]]] = {
    "file": build_file, "rtsp": build_rtsp, "rtsps": build_rtsp, "test": build_test,
    "v4l2": build_v4l2, "csi": build_csi}


class GstSource(FrameSource):
    """A GStreamer capture pipeline ending in an appsink; rebuilt with back-off when it is lost."""

    def __init__(self, settings: SourceConfig) -> None:
        super().__init__(settings.uri)
        self.scheme = urlsplit(settings.uri).scheme
        if self.scheme not in BUILDERS:
            raise ValueError(f"{settings.uri}: no GStreamer source for scheme '{self.scheme}'")
        self.settings = settings
        self._count = 0  # frames delivered (the index of live sources)

    def _build(self) -> tuple[Any, Any, bool]:
        Gst = gst().Gst
        pipeline = Gst.Pipeline.new(f"capture-{self.scheme}")
        last, live = BUILDERS[self.scheme](pipeline, self.uri, self.settings)
        is_file = self.scheme == "file"
        self.backpressure = is_file and not self.settings.realtime
        sink = make("appsink", name="frames", max_buffers=1, drop=not self.backpressure,
                    emit_signals=False, sync=is_file and self.settings.realtime)
        pipeline.add(sink)
        last.link(sink)
        return pipeline, sink, live

    def _run(self) -> None:
        Gst = gst().Gst
        backoff = Backoff(self.settings.reconnect_initial_s, self.settings.reconnect_max_s)
        first = True
        while not self.stopping:
            self.beat()
            if not first:
                self.stats.reconnects += 1
                self.stats.state = "reconnecting"
                self.stats.lost_since = self.stats.lost_since or time.monotonic()
                delay = backoff.next()
                self.stats.retry_at = time.monotonic() + delay
                log.warning("source %s lost (%s); reconnecting in %.1f s (attempt %d)", self.uri,
                            self.stats.last_error, delay, self.stats.reconnects)
                if self.wait(delay):
                    break
            first = False
            pipeline, sink, live = self._build()
            try:
                if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                    self._fail(pipeline.get_bus(), "could not start the pipeline")
                    continue
                ended = self._pump(pipeline, sink, live, backoff)
                if ended:
                    self.stats.state = "ended"
                    return
            finally:
                pipeline.set_state(Gst.State.NULL)

    def _fail(self, bus: Any, default: str) -> None:
        Gst = gst().Gst
        msg = bus.pop_filtered(Gst.MessageType.ERROR)
        text = default
        if msg is not None:
            err, debug = msg.parse_error()
            text = f"{err.message}"
        self.stats.errors += 1
        self.stats.last_error = text

    def _pump(self, pipeline: Any, sink: Any, live: bool, backoff: Backoff) -> bool:
        """Pull frames until the pipeline is lost (False) or a non-looping file ends (True)."""
        Gst = gst().Gst
        bus = pipeline.get_bus()
        last_frame = time.monotonic()
        started = last_frame
        while not self.stopping:
            self.beat()
            sample = sink.try_pull_sample(100 * Gst.MSECOND)
            now = time.monotonic()
            if sample is not None:
                frame = self._to_frame(sample, now)
                sample = None  # give the sample back now: appsink reuses it for the next buffer
                if frame is not None:
                    if self.stats.state != "playing":
                        log.info("source %s playing", self.uri)
                    self.stats.state = "playing"
                    self.stats.lost_since = 0.0
                    self._emit(frame)
                    backoff.reset()
                last_frame = now
            msg = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
            if msg is not None and msg.type == Gst.MessageType.ERROR:
                err, _debug = msg.parse_error()
                self.stats.errors += 1
                self.stats.last_error = f"{msg.src.get_name()}: {err.message}"
                return False
            if msg is not None and msg.type == Gst.MessageType.EOS:
                if self.scheme == "file" and self.settings.loop:
                    pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
                    self.stats.loops += 1
                    continue
                if self.scheme == "file":
                    log.info("source %s ended", self.uri)
                    return True
                self.stats.last_error = "end of stream"
                return False
            stall = self.settings.stall_timeout_s
            if live and now - last_frame > stall and now - started > stall:
                self.stats.errors += 1
                self.stats.last_error = f"no frame for {stall:.0f} s"
                return False
        return False

    def _to_frame(self, sample: Any, now: float) -> Frame | None:
        G = gst()
        buf = sample.get_buffer()
        info = G.GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        ok, mapinfo = buf.map(G.Gst.MapFlags.READ)
        if not ok:
            self.stats.bad_frames += 1
            return None
        try:
            h, w, stride = info.height, info.width, info.stride[0]
            view = np.ndarray((h, w, 3), np.uint8, buffer=mapinfo.data, strides=(stride, 3, 1))
            image = view.copy()  # one copy out of the mapped buffer, which goes back to the pool
        finally:
            buf.unmap(mapinfo)
        has_pts = buf.pts != G.Gst.CLOCK_TIME_NONE
        pts = buf.pts / G.Gst.SECOND if has_pts else now
        index = self._count
        if self.scheme == "file" and has_pts and info.fps_n > 0 and info.fps_d > 0:
            # the frame's position in the file: survives appsink drops, restarts when the file loops
            index = int(round(buf.pts * info.fps_n / (info.fps_d * G.Gst.SECOND)))
        self._count += 1
        return Frame(image, index, float(pts), now, None, self.uri)


def build(settings: SourceConfig) -> "GstSource":
    """The registry's builder (sources/registry.py) for test://, file://, v4l2://, csi://, rtsp(s)://."""
    return GstSource(settings)
