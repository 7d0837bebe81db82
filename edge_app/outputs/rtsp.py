"""RTSP server output (GstRtspServer): the annotated stream as H.264 at rtsp://HOST:PORT/PATH.

The media pipeline is built element by element in a factory subclass (no launch strings); one shared
pipeline serves every client. Frames are pushed while at least one client is playing.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from ..core.types import Frame
from ..gst import gst, main_loop, make
from .encoder import frame_caps, h264_elements, link_all, push

log = logging.getLogger("edge_app.rtsp")


class RtspServer:
    """One GstRtspServer on host:port; each stream is a mount (``mount``), added and removed at runtime."""

    name = "rtsp"

    def __init__(self, host: str, port: int) -> None:
        g = gst()
        if g.GstRtspServer is None:
            raise RuntimeError("RTSP output needs gir1.2-gst-rtsp-server-1.0 (apt)")
        self.host, self.port = host, int(port)
        self.server = g.GstRtspServer.RTSPServer()
        self.server.set_address(host)
        self.server.set_service(str(self.port))
        main_loop()
        self._source_id = self.server.attach(None)

    def mount(self, path: str, factory: Any) -> str:
        self.server.get_mount_points().add_factory(path, factory)
        return f"rtsp://{self.host}:{self.port}{path}"

    def unmount(self, path: str) -> None:
        self.server.get_mount_points().remove_factory(path)
        # clients of a removed mount keep their session until they time out; close them now
        pool = self.server.get_session_pool()
        if pool is not None:
            pool.cleanup()

    def close(self) -> None:
        gst().GLib.source_remove(self._source_id)


class RtspOutput:
    name = "rtsp"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8554, path: str, bitrate_kbps: int, width: int,
                 height: int, fps: float, server: RtspServer | None = None) -> None:
        """server: the shared server of several streams (this output is one mount of it); None = its own."""
        g = gst()
        if g.GstRtspServer is None:
            raise RuntimeError("RTSP output needs gir1.2-gst-rtsp-server-1.0 (apt)")
        Gst, Rtsp = g.Gst, g.GstRtspServer
        self.width, self.height, self.fps, self.bitrate = width, height, fps, bitrate_kbps
        self._appsrc: Any = None
        self._lock = threading.Lock()
        self._t0: float | None = None
        output = self

        class Factory(Rtsp.RTSPMediaFactory):  # type: ignore[name-defined]  # a GObject class at run time
            def do_create_element(self, url: Any) -> Any:  # noqa: N802 (GObject vfunc name)
                return output._make_bin()

        self.factory = Factory()
        self.factory.set_shared(True)
        self.factory.connect("media-configure", self._on_media)
        self._own = server is None
        self.rtsp = server if server is not None else RtspServer(host, port)
        self.path = path
        self.url = self.rtsp.mount(path, self.factory)
        self._gst = Gst

    def _make_bin(self) -> Any:
        Gst = gst().Gst
        bin_ = Gst.Bin.new("rtsp-bin")
        src = make("appsrc", name="src", is_live=True, format=Gst.Format.TIME, do_timestamp=False,
                   block=False, max_bytes=self.width * self.height * 3 * 2)
        src.set_property("caps", frame_caps(self.width, self.height, self.fps))
        pay = make("rtph264pay", name="pay0", pt=96, config_interval=1)
        link_all(bin_, [src, *h264_elements(self.bitrate, self.fps), pay])
        return bin_

    def _on_media(self, _factory: Any, media: Any) -> None:
        element = media.get_element()
        src = element.get_by_name("src")
        with self._lock:
            self._appsrc = src
            self._t0 = None
        media.connect("unprepared", self._on_unprepared)
        log.info("RTSP client connected: %s", self.url)

    def _on_unprepared(self, _media: Any) -> None:
        with self._lock:
            self._appsrc = None

    @property
    def clients(self) -> bool:
        return self._appsrc is not None

    def write(self, image: np.ndarray, frame: Frame) -> None:
        with self._lock:
            src = self._appsrc
            if src is None:
                return
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            pts = int((now - self._t0) * 1e9)
        if image.shape[:2] != (self.height, self.width):
            import cv2
            image = cv2.resize(image, (self.width, self.height))
        # FLUSHING until the media is PLAYING: just try again with the next frame.
        push(src, image, pts, int(1e9 / self.fps))

    def close(self) -> None:
        with self._lock:
            self._appsrc = None
        if self._own:
            self.rtsp.close()
        else:
            self.rtsp.unmount(self.path)
