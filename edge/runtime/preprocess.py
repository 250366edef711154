"""Per-frame preprocessing: crop to square (or ROI), an area-like resize (resize_area), colour convert."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

# One thread: OpenCV's pool splits a 0.2 ms resize across cores and only adds hand-over cost
# (0.31 vs 0.21 ms on 2 cores), and the other core belongs to the interpreter.
cv2.setNumThreads(1)


def crop_box(height: int, width: int, roi: Optional[Sequence[int]] = None) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the region to classify: the ROI clipped to the frame, else the centre square."""
    if roi is not None:
        x, y, w, h = (int(v) for v in roi)
        x, y = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
        return x, y, max(1, min(w, width - x)), max(1, min(h, height - y))
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


def resize_area(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """An INTER_AREA-like shrink at a fraction of INTER_AREA's cost.

    OpenCV's area resize is fast only for a factor of 2 (SIMD): 480 -> 96 (5x) takes 0.26 ms,
    480 -> 224 1.0 ms on this 2-core EPYC. Factors 3-5 (96-160 px models): bilinear to twice
    the target (each output pixel blends 2x2 source pixels, so a <= 2.5x step skips little),
    then the area halving: 480 -> 96 in 0.17 ms. Other factors: trim by fewer pixels than the
    whole factor, area-shrink by it (480 -> 240 for 224 px), bilinear for the last < 2x step.
    All stay within ~0.2-0.3 grey levels of a single INTER_AREA on the hand photos
    (tests/test_preprocess.py checks it).
    """
    h, w = img.shape[:2]
    kx, ky = w // width, h // height
    if kx < 2 or ky < 2:
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    if min(kx, ky) >= 3 and w <= 5 * width and h <= 5 * height:
        twice = cv2.resize(img, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(twice, (width, height), interpolation=cv2.INTER_AREA)
    if w % width == 0 and h % height == 0:
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    tw, th = w - w % kx, h - h % ky  # trim < k pixels so the whole factor divides exactly
    x0, y0 = (w - tw) // 2, (h - th) // 2
    mid = cv2.resize(img[y0:y0 + th, x0:x0 + tw], (tw // kx, th // ky), interpolation=cv2.INTER_AREA)
    if mid.shape[0] == height and mid.shape[1] == width:
        return mid
    return cv2.resize(mid, (width, height), interpolation=cv2.INTER_LINEAR)


def prepare(frame: np.ndarray, height: int, width: int, channels: int = 3,
            roi: Optional[Sequence[int]] = None) -> np.ndarray:
    """RGB uint8 frame -> uint8 (height, width, channels) model input. No float round trip."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    x, y, w, h = crop_box(frame.shape[0], frame.shape[1], roi)
    view = frame[y:y + h, x:x + w]  # a view, no copy
    if channels == 1 and view.shape[2] == 3:
        view = cv2.cvtColor(view, cv2.COLOR_RGB2GRAY)  # gray first: resize one channel, not three
    elif channels == 3 and view.shape[2] == 1:
        view = cv2.cvtColor(view, cv2.COLOR_GRAY2RGB)
    if view.shape[0] != height or view.shape[1] != width:
        view = resize_area(view, width, height)
    if view.ndim == 2:
        view = view[:, :, None]
    return np.ascontiguousarray(view)


def read_image(path: str) -> np.ndarray:
    """An image file as an RGB uint8 array (ValueError if unreadable)."""
    # Read here, decode from memory: cv2.imread would print its own WARN lines on stderr
    # beside our one-line error for a missing or unreadable file.
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{path}: no such file")
    if p.is_dir():
        raise ValueError(f"{path}: a directory")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from e
    return decode_image(data, path)


def decode_image(data: bytes, what: str = "image") -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, …) -> RGB uint8 (ValueError if not an image).

    A PNG or WebP with transparency (a web canvas that was never filled is transparent black)
    is laid on white when what is opaque in it is dark, on black when it is light: strokes on
    a transparent canvas stay visible, whatever their colour."""
    buf = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise ValueError(f"{what}: not a readable image")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if data[:8] == b"\x89PNG\r\n\x1a\n" or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        full = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if full is not None and full.ndim == 3 and full.shape[2] == 4:
            top = 65535.0 if full.dtype == np.uint16 else 255.0
            alpha = full[:, :, 3].astype(np.float32)[:, :, None] / top
            if float(alpha.min()) < 1.0:
                opaque = alpha[:, :, 0] > 0.5
                luma = float(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[opaque].mean()) if opaque.any() else 0.0
                bg = 255.0 if luma < 128 else 0.0
                rgb = np.clip(rgb * alpha + bg * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
    return rgb
