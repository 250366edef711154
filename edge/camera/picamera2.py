"""Raspberry Pi CSI camera through picamera2 (imported lazily: it does not install on x86)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from edge.errors import CameraError


class Picamera2Source:
    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, index: int = 0):
        self.width, self.height, self.fps, self.index = width, height, fps, index
        self.name = "picamera2" if index == 0 else f"picamera2:{index}"
        self._cam: Optional[Any] = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # noqa: PLC0415 - Pi only
        except ImportError as e:
            raise CameraError("picamera2 is not installed: sudo apt install python3-picamera2 and make the "
                              "venv with --system-site-packages (or use --camera opencv:0)") from e
        try:
            cam = Picamera2(self.index)
            # libcamera's "BGR888" is R,G,B byte order in memory, i.e. an RGB numpy array.
            conf = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "BGR888"},
                controls={"FrameRate": float(self.fps)}, buffer_count=2)
            cam.configure(conf)
            cam.start()
        except Exception as e:  # libcamera raises RuntimeError, IndexError, OSError…
            raise CameraError(f"picamera2: cannot start camera {self.index}: {e}") from e
        self._cam = cam

    def read(self) -> Optional[np.ndarray]:
        cam = self._cam
        if cam is None:
            return None
        try:
            return cam.capture_array("main")
        except Exception:
            return None

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
                cam.close()
            except Exception:
                pass
