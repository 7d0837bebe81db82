"""Camera-motion compensation from the frames (BoT-SORT's GMC, sparse optical flow): corners of the last
frame are followed into this one by pyramidal Lucas-Kanade on a downscaled grey image, and a similarity
transform (rotation, scale, shift) is fitted with RANSAC, so moving objects are outvoted by the
background; corners inside the frame's detections are not taken at all (BoT-SORT masks its foreground
too): on a fixed camera, a crowd walking one way otherwise fits pans of up to 21 px at 1080p (ADL-Rundle-6).
A panning or shaking camera then moves every track with the scene before association, instead of the
Kalman filter mistaking the pan for the objects' motion. OpenCV (the runtime's image library)."""
from __future__ import annotations

import numpy as np


class CameraMotion:
    """``estimate(frame) -> (2, 3)`` the affine map from the last frame's pixels to this frame's (None on
    the first frame, or when too few corners agree: the tracks are then left where they are)."""

    def __init__(self, width: int = 320, corners: int = 150, min_inliers: int = 20) -> None:
        """width: frames are downscaled to this width first; corners: at most this many are followed."""
        import cv2
        self.cv2 = cv2
        self.width, self.corners, self.min_inliers = width, corners, min_inliers
        self.reset()

    def reset(self) -> None:
        self.prev: np.ndarray | None = None
        self.prev_points: np.ndarray | None = None

    def estimate(self, frame: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray | None:
        """frame: (H, W, 3) BGR or (H, W) grey, uint8; boxes: (N, 4) xyxy pixels, this frame's detections:
        no corner is taken inside them (the objects move on their own; the camera's motion is the scene's)."""
        cv2 = self.cv2
        scale = min(1.0, self.width / frame.shape[1])
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, (int(round(frame.shape[1] * scale)), int(round(frame.shape[0] * scale))),
                              interpolation=cv2.INTER_AREA)
        prev, prev_points = self.prev, self.prev_points
        self.prev = grey
        mask = None
        if boxes is not None and len(boxes):
            mask = np.full(grey.shape, 255, np.uint8)
            for x1, y1, x2, y2 in np.round(np.asarray(boxes, np.float64) * scale).astype(np.int64):
                mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 0
        self.prev_points = cv2.goodFeaturesToTrack(grey, self.corners, 0.01, 8, mask=mask, blockSize=3)
        if prev is None or prev_points is None or len(prev_points) < self.min_inliers or prev.shape != grey.shape:
            return None
        points, status, _err = cv2.calcOpticalFlowPyrLK(prev, grey, prev_points, None)
        ok = status.ravel() == 1
        if ok.sum() < self.min_inliers:
            return None
        warp, inliers = cv2.estimateAffinePartial2D(prev_points[ok], points[ok], method=cv2.RANSAC,
                                                    ransacReprojThreshold=1.0)
        if warp is None or inliers is None or int(inliers.sum()) < self.min_inliers:
            return None
        warp = warp.astype(np.float64)
        warp[:, 2] /= scale  # the shift back in full-resolution pixels (the linear part is scale-free)
        return warp
