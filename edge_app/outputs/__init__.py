"""Outputs of the annotated stream; each is a small class with ``write(image, frame)`` and ``close()``.

http: the live page + MJPEG (web.py); rtsp: an RTSP server with H.264; record: MP4 segments.
"""
from __future__ import annotations

OUTPUTS = {
    "http": "edge_app.outputs.http:HttpOutput",
    "rtsp": "edge_app.outputs.rtsp:RtspOutput",
    "record": "edge_app.outputs.record:RecordOutput",
}
