"""OpenCV camera: a V4L2 device index or path, a video file, or a network stream (rtsp://…)."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from edge.errors import CameraError
from edge.redact import redact


class OpenCVSource:
    def __init__(self, target: str, width: int = 640, height: int = 480, fps: float = 30.0):
        self.target: int | str = int(target) if target.isdigit() else target
        self.width, self.height, self.fps = width, height, fps
        self.name = redact(f"opencv:{target}")  # the stats and the log show it
        self._cap: Optional[cv2.VideoCapture] = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            hint = ("is the stream reachable, and the URL right?" if "://" in str(self.target) else
                    "is the device present, and is this user in group 'video'?")
            raise CameraError(f"{self.name}: cannot open ({hint})")
        if isinstance(self.target, int) or str(self.target).startswith("/dev/"):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver from queueing stale frames
        self._cap = cap

    def read(self) -> Optional[np.ndarray]:
        cap = self._cap
        if cap is None:
            return None
        ok, bgr = cap.read()
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
