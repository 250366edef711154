"""Real photos for calibrating and measuring the hand models: which ones, and their inputs.

Two disjoint picks from each set (seeded): one to calibrate int8 on, one to measure every
variant on. The palm detector sees whole frames letterboxed as the edge letterboxes them;
the landmark model sees the rotated hand crop the edge's stage cuts from the float palm
detector's best palm (or, where none reaches a low threshold, a centre square: the
landmark model still runs on it and its presence score should say "no hand").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.errors import ConvertError
from edge.camera.replay import list_images
from edge.hands.palm import PalmDetector, letterbox
from edge.hands.roi import RotatedRect, crop, rect_from_palm
from edge.runtime.preprocess import read_image

# (set label, folder under the data root, images to measure on, images to calibrate on)
SETS = (
    ("epsrc hands", "epsrc-finger-counting", 120, 60, ("1", "2", "3", "4", "5")),
    ("epsrc no-hand", "epsrc-finger-counting", 24, 12, ("no-hand",)),
    ("sign-language", "sign-language-digits", 80, 60, tuple(str(i) for i in range(10))),
)
CROP_MIN_SCORE = 0.05  # a palm this weak still places the crop (no-hand photos get one too)


@dataclass(frozen=True)
class Photo:
    path: Path
    group: str  # SETS label


def pick_photos(root: Path, seed: int = 0) -> tuple[list[Photo], list[Photo]]:
    """(measure, calibrate): disjoint seeded picks from each of SETS under root."""
    measure: list[Photo] = []
    calib: list[Photo] = []
    rng = np.random.default_rng(seed)
    for label, folder, n_measure, n_calib, classes in SETS:
        files = [f for c in classes for f in list_images(root / folder / c)]
        if not files:
            raise ConvertError(f"--data {root}: no images in {folder}/{{{','.join(classes)}}}")
        order = rng.permutation(len(files))
        measure += [Photo(files[i], label) for i in order[:n_measure]]
        calib += [Photo(files[i], label) for i in order[n_measure:n_measure + n_calib]]
    return measure, calib


def photo_groups(photos: list[Photo]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in photos:
        out[p.group] = out.get(p.group, 0) + 1
    return out


def read_rgb(photo: Photo) -> np.ndarray:
    try:
        return read_image(str(photo.path))
    except ValueError as e:
        raise ConvertError(str(e)) from None


def palm_inputs(photos: list[Photo], size: int) -> np.ndarray:
    """(N, size, size, 3) float [0, 1]: each photo letterboxed as the palm detector sees it."""
    return np.stack([letterbox(read_rgb(p), size)[0] for p in photos])


def centre_rect(rgb: np.ndarray) -> RotatedRect:
    h, w = rgb.shape[:2]
    return RotatedRect(w / 2, h / 2, float(min(h, w)), 0.0)


def hand_crops(photos: list[Photo], palm: PalmDetector, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(crops (N, size, size, 3) float [0, 1], palm found (N,) bool at the detector's own
    threshold) with the crop from the best palm above CROP_MIN_SCORE or a centre square."""
    crops, found = [], []
    keep = palm.min_score
    for p in photos:
        rgb = read_rgb(p)
        palm.min_score = CROP_MIN_SCORE
        try:
            palms = palm.detect(rgb)
        finally:
            palm.min_score = keep
        rect = rect_from_palm(palms[0].box, palms[0].keypoints) if palms else centre_rect(rgb)
        crops.append(crop(rgb, rect, size))
        found.append(bool(palms) and palms[0].score >= keep)
    return np.stack(crops), np.array(found)
