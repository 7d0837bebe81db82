"""What a video file is, before it plays: its frame size, so a file runs at its own size (no letterbox
into the config's default 640x480, no black bars under the lines drawn on it) unless the config sets one.
OpenCV's FFmpeg reader only opens the container and reads the stream header: milliseconds."""
from __future__ import annotations

from pathlib import Path


def video_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a video file, None if it cannot be read (a missing or broken file is named by the
    config check, not here)."""
    import cv2

    if not Path(path).is_file():
        return None
    cap = cv2.VideoCapture(str(path))
    try:
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    return (w, h) if w >= 16 and h >= 16 else None
