"""The live view's picture: the frame scaled down, the hand's box and 21 landmarks drawn on it."""

from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np

# MediaPipe's hand skeleton: thumb, index, middle, ring, little, and the palm
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10),
         (10, 11), (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17),
         (17, 18), (18, 19), (19, 20))
BOX = (64, 200, 255)  # BGR
BONE = (255, 255, 255)
JOINT = (40, 160, 255)


def scaled(rgb: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """BGR copy at most `width` wide, and the scale applied."""
    h, w = rgb.shape[:2]
    s = min(1.0, width / float(w))
    if s < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if rgb.ndim == 2:
        return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR), s
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), s


def draw_hand(img: np.ndarray, hand: Any, s: float) -> None:
    """Box and landmarks of a Hand (frame pixels) on img (scaled by s); a missing part is skipped."""
    if hand is None or getattr(hand, "present", True) is False:
        return
    t = max(1, round(img.shape[1] / 240))
    box = getattr(hand, "box", None)
    if box is not None and len(box) == 4:
        x0, y0, x1, y1 = (int(round(v * s)) for v in box)
        cv2.rectangle(img, (x0, y0), (x1, y1), BOX, t, cv2.LINE_AA)
    lm: Optional[np.ndarray] = getattr(hand, "landmarks", None)
    if lm is None:
        return
    pts = np.asarray(lm, dtype=np.float32).reshape(-1, 3)[:, :2] * s
    if len(pts) < 21 or not np.all(np.isfinite(pts)):
        return
    p = [(int(round(x)), int(round(y))) for x, y in pts]
    for a, b in BONES:
        cv2.line(img, p[a], p[b], BONE, t, cv2.LINE_AA)
    for q in p:
        cv2.circle(img, q, t + 1, JOINT, -1, cv2.LINE_AA)


def render(rgb: np.ndarray, hand: Any, width: int, quality: int) -> bytes:
    """One JPEG of the live view."""
    img, s = scaled(rgb, width)
    draw_hand(img, hand, s)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
