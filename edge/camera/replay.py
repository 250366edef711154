"""Replay camera: loops a folder of images (recursively, sorted) or a video file.

The demo and the tests run the whole daemon on it. Images are decoded once; each frame is
the same read-only array every loop, so replay costs no per-frame allocation.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from edge.errors import CameraError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# While DIR/.freeze exists a folder replay delivers nothing, like a camera whose driver
# hangs: the fault tests (tests/faults) prove stall detection and recovery with it.
FREEZE_FILE = ".freeze"


def list_images(folder: Path, suffixes: Collection[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Every image (a file ending in one of `suffixes`, any case) under folder, in name order;
    symlinked folders are followed (once each)."""
    out, seen = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        out += [Path(root) / f for f in files if Path(f).suffix.lower() in suffixes]
    return sorted(p for p in out if p.is_file())


class ReplaySource:
    """replay:PATH[@FPS]; FPS 0 means as fast as the consumer takes them."""

    def __init__(self, path: str | Path, fps: float = 30.0, loop: bool = True,
                 size: Optional[tuple[int, int]] = None):
        self.path = Path(path)
        # (width, height): folder images are resized to it once at open, so a benchmark on
        # replay sees camera-sized frames without paying a resize per frame.
        self.size = size
        self.fps = float(fps)
        self.loop = loop
        self.name = f"replay:{self.path}@{self.fps:g}"
        self.on_demand = self.fps <= 0  # unpaced: a new frame whenever the last one was taken
        self._frames: list[np.ndarray] = []
        self._video: Optional[cv2.VideoCapture] = None
        self._video_lock = threading.Lock()
        self._is_video = False
        self._i = 0
        self._next_due = 0.0
        self._closed = threading.Event()
        self._freeze = str(self.path / FREEZE_FILE)  # one stat per frame, no Path building

    def open(self) -> None:
        self._closed.clear()
        self._i = 0
        self._next_due = time.monotonic()
        if self.path.is_dir():
            if not self._frames:
                self._frames = [self._fit(self._decode(p)) for p in list_images(self.path)]
            if not self._frames:
                raise CameraError(f"replay: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {self.path}")
            return
        if not self.path.is_file():
            raise CameraError(f"replay: {self.path} is neither a folder of images nor a video file")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise CameraError(f"replay: cannot open video {self.path}")
        self._video = cap
        self._is_video = True

    @staticmethod
    def _decode(p: Path) -> np.ndarray:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CameraError(f"replay: {p} is not a readable image")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False  # shared by every loop: nobody may draw on it
        return rgb

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        if self.size is None or (rgb.shape[1], rgb.shape[0]) == tuple(self.size):
            return rgb
        out = cv2.resize(rgb, tuple(self.size), interpolation=cv2.INTER_LINEAR)
        out.flags.writeable = False
        return out

    def _pace(self) -> bool:
        """Sleep until the next frame is due; False if closed meanwhile."""
        if self.fps <= 0:
            return not self._closed.is_set()
        delay = self._next_due - time.monotonic()
        if delay > 0 and self._closed.wait(delay):
            return False
        # Do not try to catch up after a pause: a camera does not buffer the past either.
        self._next_due = max(self._next_due + 1.0 / self.fps, time.monotonic())
        return not self._closed.is_set()

    def read(self) -> Optional[np.ndarray]:
        if not self._pace():
            return None
        if self._frames and os.path.exists(self._freeze):
            self._closed.wait(0.05)
            return None
        if self._is_video:
            return self._read_video()
        if self._i >= len(self._frames):
            if not self.loop:
                return None
            self._i = 0
        frame = self._frames[self._i]
        self._i += 1
        return frame

    def _read_video(self) -> Optional[np.ndarray]:
        # close() may run in another thread (stop): the lock keeps it from releasing the
        # capture between our check and our use of it.
        with self._video_lock:
            cap = self._video
            if cap is None or self._closed.is_set():
                return None
            ok, bgr = cap.read()
            if not ok:
                if not self.loop:
                    return None
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = cap.read()
                if not ok:
                    raise CameraError(f"replay: {self.path} yields no frames")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._closed.set()
        with self._video_lock:
            if self._video is not None:
                self._video.release()
                self._video = None
