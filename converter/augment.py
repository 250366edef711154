"""Augmentation for training and the fixed corruptions the model card reports.

Both work on full-resolution uint8 frames *before* edge preprocessing, like a camera
would deliver them. Training draws random strengths; corruptions are fixed, moderate
and deterministic so robustness figures are comparable between builds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 20.0
    scale: tuple[float, float] = (0.8, 1.2)
    shift: float = 0.12          # fraction of the side
    flip: bool = True            # a left hand counts like a right hand
    brightness: tuple[float, float] = (0.5, 1.5)
    contrast: tuple[float, float] = (0.7, 1.3)
    colour_cast: float = 0.25    # per-channel gain 1 +- this
    blur_sigma: float = 1.6
    noise_sigma: float = 16.0
    jpeg_quality: tuple[int, int] = (15, 95)
    p_photometric: float = 0.8   # chance of each photometric change being applied

    @classmethod
    def from_dict(cls, d: dict | None) -> AugmentConfig:
        d = dict(d or {})
        for k in ("scale", "brightness", "contrast", "jpeg_quality"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


def _affine(img: np.ndarray, angle: float, scale: float, dx: float, dy: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[0, 2] += dx * w
    m[1, 2] += dy * h
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(img.shape)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out.reshape(img.shape)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma).reshape(img.shape)


def augment(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One random training variant of a uint8 frame (same shape)."""
    out = img
    if cfg.flip and rng.random() < 0.5:
        out = out[:, ::-1]
    if cfg.rotate_deg or cfg.shift or cfg.scale != (1.0, 1.0):
        out = _affine(np.ascontiguousarray(out), rng.uniform(-cfg.rotate_deg, cfg.rotate_deg),
                      rng.uniform(*cfg.scale), rng.uniform(-cfg.shift, cfg.shift),
                      rng.uniform(-cfg.shift, cfg.shift))
    p = cfg.p_photometric
    x = out.astype(np.float32)
    if rng.random() < p and cfg.brightness != (1.0, 1.0):
        x = x * rng.uniform(*cfg.brightness)
    if rng.random() < p and cfg.contrast != (1.0, 1.0):
        mean = x.mean()
        x = (x - mean) * rng.uniform(*cfg.contrast) + mean
    if cfg.colour_cast and x.shape[-1] == 3 and rng.random() < p:
        x = x * rng.uniform(1 - cfg.colour_cast, 1 + cfg.colour_cast, size=3)
    if cfg.noise_sigma and rng.random() < p * 0.5:
        x = x + rng.normal(0, rng.uniform(0, cfg.noise_sigma), size=x.shape)
    out = np.clip(x, 0, 255).astype(np.uint8)
    if cfg.blur_sigma and rng.random() < p * 0.4:
        out = _blur(out, rng.uniform(0.3, cfg.blur_sigma))
    if cfg.jpeg_quality and rng.random() < p * 0.4:
        out = _jpeg(out, int(rng.integers(*cfg.jpeg_quality)))
    return out


# ---- fixed corruptions for the robustness figures (int8 accuracy per kind) ----------------

def _lighting(img: np.ndarray, i: int) -> np.ndarray:
    gain = 0.6 if i % 2 == 0 else 1.35  # alternately dim and bright
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _cast(img: np.ndarray, i: int) -> np.ndarray:
    if img.shape[-1] != 3:
        return img
    gains = (1.2, 1.0, 0.8) if i % 2 == 0 else (0.8, 1.0, 1.2)  # warm / cool white balance
    return np.clip(img.astype(np.float32) * np.array(gains), 0, 255).astype(np.uint8)


def _noise(img: np.ndarray, i: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + i)
    return np.clip(img.astype(np.float32) + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


CORRUPTIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "lighting": _lighting,
    "colour_cast": _cast,
    "blur": lambda img, i: _blur(img, 1.2 * img.shape[0] / 100),
    "noise": _noise,
    "jpeg": lambda img, i: _jpeg(img, 20),
    "rotation": lambda img, i: _affine(img, 15 if i % 2 == 0 else -15, 1.0, 0, 0),
    "scale": lambda img, i: _affine(img, 0, 0.85 if i % 2 == 0 else 1.15, 0, 0),
    "shift": lambda img, i: _affine(img, 0, 1.0, 0.1 if i % 2 == 0 else -0.1,
                                    0.1 if i % 4 < 2 else -0.1),
}

CORRUPTION_NOTES = {
    "lighting": "brightness x0.6 / x1.35 (alternating)",
    "colour_cast": "channel gains (1.2, 1.0, 0.8) / (0.8, 1.0, 1.2)",
    "blur": "Gaussian, sigma 1.2 px per 100 px of frame",
    "noise": "Gaussian pixel noise, sigma 12",
    "jpeg": "JPEG quality 20",
    "rotation": "+-15 degrees",
    "scale": "zoom x0.85 / x1.15",
    "shift": "10 % of the side in x and y",
}
