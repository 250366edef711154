"""Augmentation for MNIST-style digits: how handwriting and its pictures vary.

Works on a 28x28 white-on-black digit, upsampled UPSCALE times so that the distortions and the
stroke changes are finer than MNIST's pixels; the result goes through the edge's mnist_like()
(the converter's training input is what a device computes). Handwriting: slant, shear, aspect,
elastic distortion (Simard et al. 2003), stroke width. Pictures: with paper_p the digit becomes
dark ink on unevenly lit, noisy, blurred paper, the way a camera sees a written digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

UPSCALE = 3


@dataclass(frozen=True)
class DigitAugmentConfig:
    rotate_deg: float = 12.0
    shear: float = 0.25                      # x += shear * y, both ways
    aspect: tuple[float, float] = (0.8, 1.2)  # x and y scaled independently (recentred later)
    elastic_p: float = 0.5
    elastic_alpha: float = 34.0               # displacement in 28-px pixels before smoothing
    elastic_sigma: float = 4.0                # smoothing of the displacement field (28-px pixels)
    stroke_p: float = 0.5                     # thicker or thinner pen
    stroke_px: float = 1.0                    # up to this much wider or narrower (28-px pixels)
    paper_p: float = 0.0                      # rendered as a photo of ink on paper
    noise_sigma: float = 8.0                  # photo sensor noise (grey levels)
    blur_sigma: float = 1.2                   # photo defocus (fraction of a stroke's width)

    @classmethod
    def from_dict(cls, d: dict | None) -> DigitAugmentConfig:
        d = dict(d or {})
        if "aspect" in d:
            d["aspect"] = tuple(d["aspect"])
        return cls(**d)


def _affine(img: np.ndarray, cfg: DigitAugmentConfig, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape
    a = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    sx, sy = rng.uniform(*cfg.aspect), rng.uniform(*cfg.aspect)
    sh = rng.uniform(-cfg.shear, cfg.shear)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = rot @ np.array([[1.0, sh], [0.0, 1.0]]) @ np.diag([sx, sy])
    c = np.array([w / 2, h / 2])
    t = c - m @ c
    return cv2.warpAffine(img, np.hstack([m, t[:, None]]).astype(np.float32), (w, h),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _elastic(img: np.ndarray, cfg: DigitAugmentConfig, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape
    # the smooth field made at MNIST's scale (a 4-px blur, not a 12-px one), then upsampled
    sh, sw = h // UPSCALE, w // UPSCALE
    alpha = cfg.elastic_alpha * UPSCALE
    dx, dy = (cv2.resize(cv2.GaussianBlur(rng.uniform(-1, 1, (sh, sw)).astype(np.float32), (0, 0),
                                          cfg.elastic_sigma), (w, h), interpolation=cv2.INTER_LINEAR) * alpha
              for _ in range(2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(img, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _stroke(img: np.ndarray, cfg: DigitAugmentConfig, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(2, max(3, int(round(cfg.stroke_px * UPSCALE)) + 2)))
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    if rng.random() < 0.5:
        return cv2.dilate(img, kern)
    thin = cv2.erode(img, kern)
    return thin if thin.max() > 0.5 * img.max() else img  # a thin digit is not erased


def _paper(ink: np.ndarray, cfg: DigitAugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """ink (white on black, 0..255) -> grey uint8 photo of dark ink on paper."""
    h, w = int(rng.integers(96, 160)), int(rng.integers(96, 160))
    side = int(min(h, w) * rng.uniform(0.45, 0.9))
    digit = cv2.resize(ink, (side, side), interpolation=cv2.INTER_AREA) / 255.0
    canvas = np.zeros((h, w), np.float32)
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    canvas[y0:y0 + side, x0:x0 + side] = digit
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    grad = (xx * np.cos(a) + yy * np.sin(a)) / max(h, w)  # light falling off across the page
    paper = rng.uniform(140, 245) * (1 - rng.uniform(0, 0.45) * (grad - grad.min()))
    darkness = rng.uniform(0.45, 0.9)
    img = paper * (1 - darkness * canvas)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, max(0.31, cfg.blur_sigma)))
    img = img + rng.normal(0, rng.uniform(0, cfg.noise_sigma), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def augment_digit(frame: np.ndarray, cfg: DigitAugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One random variant of a 28x28 (x1) white-on-black digit: a grey uint8 image for mnist_like()."""
    h, w = frame.shape[:2]
    g = frame.reshape(h, w).astype(np.float32)
    big = cv2.resize(g, (w * UPSCALE, h * UPSCALE), interpolation=cv2.INTER_LINEAR)
    # room around the digit, so rotation and distortion do not push strokes off the frame
    pad = big.shape[0] // 4
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    big = _affine(big, cfg, rng)
    if rng.random() < cfg.elastic_p:
        big = _elastic(big, cfg, rng)
    if rng.random() < cfg.stroke_p:
        big = _stroke(big, cfg, rng)
    if rng.random() < cfg.paper_p:
        return _paper(big, cfg, rng)
    return np.clip(big, 0, 255).astype(np.uint8)
