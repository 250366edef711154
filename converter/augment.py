"""Augmentation for training and the fixed corruptions the model card reports.

Both work on full-resolution uint8 frames *before* edge preprocessing, like a camera
would deliver them. Training draws random strengths; corruptions are fixed, moderate
and deterministic so robustness figures are comparable between builds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    # Background replacement: the photos' bright grey wall becomes a random background
    # (solid, gradient, noise texture or a blurred crop of another training photo), the hand
    # scaled within hand_scale at a random offset, and a gain + offset colour cast. Users'
    # cameras differ in exactly these; off (0) unless the recipe enables it.
    background_p: float = 0.0
    hand_scale: tuple[float, float] = (0.55, 1.0)
    background_cast: float = 0.3  # per-channel gain 1 +- this, offset +- 40x this
    # A camera looking at the hand from below, above or the side: one edge of the image
    # narrower than the other by up to this fraction on each side (keystone). Off unless set.
    perspective: float = 0.0
    perspective_p: float = 0.5

    @classmethod
    def from_dict(cls, d: dict | None) -> AugmentConfig:
        d = dict(d or {})
        for k in ("scale", "brightness", "contrast", "jpeg_quality", "hand_scale"):
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


def _keystone(img: np.ndarray, amount: float, edge: int) -> np.ndarray:
    """The image as seen at an angle: edge 0-3 (top, right, bottom, left) shortened by
    amount of its length at each end, the opposite edge unchanged."""
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = src.copy()
    a, b = edge, (edge + 1) % 4  # the two corners of that edge
    along = (src[b] - src[a]) * amount
    dst[a] += along
    dst[b] -= along
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(img.shape)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    assert out is not None
    return out.reshape(img.shape)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma).reshape(img.shape)


def wall_mask(img: np.ndarray, bright: float = 130, grey: float = 45) -> np.ndarray:
    """Soft (H, W) float32 mask of the bright, low-saturation wall behind the hands."""
    x = img.astype(np.float32)
    mx, mn = x.max(axis=2), x.min(axis=2)
    return cv2.GaussianBlur(((mn > bright) & (mx - mn < grey)).astype(np.float32), (5, 5), 0)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3).astype(np.float32)


def random_background(h: int, w: int, rng: np.random.Generator,
                      pool: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """A random (h, w, 3) float32 background: solid, gradient, noise texture or another photo."""
    kinds = 4 if pool else 3
    kind = int(rng.integers(kinds))
    if kind == 0:  # solid colour
        bg = np.broadcast_to(_colour(rng), (h, w, 3)).copy()
    elif kind == 1:  # linear gradient between two colours at a random angle
        a = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xx * np.cos(a) / w + yy * np.sin(a) / h
        t = ((t - t.min()) / max(float(np.ptp(t)), 1e-6))[:, :, None]
        bg = _colour(rng) * (1 - t) + _colour(rng) * t
    elif kind == 2:  # blotchy texture: coarse random colours upsampled
        cells = int(rng.integers(2, 12))
        coarse = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
        bg = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    else:  # blurred random crop of another training photo (hands, walls, whatever is there)
        assert pool  # kind 3 only with a pool
        other = pool[int(rng.integers(len(pool)))]
        if other.ndim == 2 or other.shape[-1] != 3:
            other = cv2.cvtColor(other.reshape(other.shape[:2]), cv2.COLOR_GRAY2RGB)
        oh, ow = other.shape[:2]
        f = rng.uniform(0.15, 0.5)  # small crops: texture and colour, not a second hand
        ch, cw = max(2, int(oh * f)), max(2, int(ow * f))
        y0, x0 = int(rng.integers(0, oh - ch + 1)), int(rng.integers(0, ow - cw + 1))
        crop = other[y0:y0 + ch, x0:x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        bg = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_LINEAR)
        bg = cv2.GaussianBlur(bg.astype(np.float32), (0, 0), rng.uniform(1.5, 5.0))
    if rng.random() < 0.7:  # sensor-like noise on the new background
        bg = bg + rng.normal(0, rng.uniform(0, 12), size=(h, w, 1)).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.float32)


def replace_background(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator,
                       pool: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The wall replaced by a random background, the hand scaled and moved, a colour cast."""
    if img.ndim != 3 or img.shape[-1] != 3:
        return img
    h, w = img.shape[:2]
    # jittered thresholds: real walls are not all equally bright or grey
    mask = wall_mask(img, rng.uniform(115, 145), rng.uniform(35, 55))
    canvas = random_background(h, w, rng, pool)
    s = rng.uniform(*cfg.hand_scale)
    sh, sw = max(2, int(round(h * s))), max(2, int(round(w * s)))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    m = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA)[:, :, None]
    oy, ox = int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1))
    region = canvas[oy:oy + sh, ox:ox + sw]
    canvas[oy:oy + sh, ox:ox + sw] = small * (1 - m) + region * m
    if cfg.background_cast and rng.random() < 0.7:
        c = cfg.background_cast
        canvas = canvas * rng.uniform(1 - c, 1 + c, size=3) + rng.uniform(-40 * c, 40 * c, size=3)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def augment(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator,
            pool: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """One random training variant of a uint8 frame (same shape).

    pool: the other training frames, used as background material by background replacement.
    """
    out = img
    if cfg.background_p and rng.random() < cfg.background_p:
        out = replace_background(out, cfg, rng, pool)
    if cfg.flip and rng.random() < 0.5:
        out = out[:, ::-1]
    if cfg.perspective and rng.random() < cfg.perspective_p:
        out = _keystone(np.ascontiguousarray(out), rng.uniform(0, cfg.perspective), int(rng.integers(4)))
    if cfg.rotate_deg or cfg.shift or cfg.scale != (1.0, 1.0):
        out = _affine(np.ascontiguousarray(out), rng.uniform(-cfg.rotate_deg, cfg.rotate_deg),
                      rng.uniform(*cfg.scale), rng.uniform(-cfg.shift, cfg.shift),
                      rng.uniform(-cfg.shift, cfg.shift))
    p = cfg.p_photometric
    x: np.ndarray = out.astype(np.float32)
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
