"""Augmentation in landmark space for the landmark count head (numpy only, no TensorFlow).

Everything works on canonical landmarks (edge.hands.features.palm_frame: a right hand,
wrist at the origin, x across the palm towards the index finger, y wrist -> middle MCP,
z the palm's normal, palm size 1). landmark_features of canonical landmarks with
handedness "right" equals that of the original hand, so augmented sets are canonical.

Moving the hand, scaling it, turning it in the image plane and mirroring it with its
handedness are exact invariances of the features (tests/test_landmark_features.py), so
augmenting them would add nothing. What does change the features, and what the model
meets on real cameras: depth (z) estimated worse or better than in the training photos
(a turn of the hand, then z stretched), per-landmark noise, fingers longer or shorter,
a handedness the hand stage got wrong (mirrored, label kept), and, most of all, other
fingers extended than the training photos show: curl() folds any subset of fingers of a
real open hand, so a hand with k of 5 fingers curled is an example of 5 - k with every
choice of fingers (and 0 as a fist, which the photos never show).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from edge.hands.features import CHAINS, palm_frame

# Which way fingers fold in the canonical frame: +1 = towards +z. Measured on the hand
# stage's landmarks of the training photos (fingertips of curled fingers, classes 0-4,
# lie at +z of their MCP joints: tools/palm_side.py and tests/test_landmark_features.py).
PALM_SIGN = 1.0


def rotate(points: np.ndarray, origin: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of points (N, 3) about the line through origin along axis."""
    k = axis / max(float(np.linalg.norm(axis)), 1e-12)
    v = points - origin
    cos, sin = np.cos(angle), np.sin(angle)
    return origin + v * cos + np.cross(k, v) * sin + np.outer(v @ k, k) * (1 - cos)


def _flex(c: np.ndarray, joint: int, rest: Sequence[int], angle: float, palm: np.ndarray) -> None:
    """Bend the points `rest` about landmark `joint`, towards the palm side, by angle (in place)."""
    d = c[rest[0]] - c[joint]
    axis = np.cross(d, palm)
    if float(np.linalg.norm(axis)) < 1e-9:
        return
    c[list(rest)] = rotate(c[list(rest)], c[joint], axis, angle)


@dataclass(frozen=True)
class CurlRange:
    """Fold angles (degrees) drawn for a curled finger, measured on the hand stage's landmarks
    of the training photos (tools/curl_calibration.py): a finger folded into the palm (the
    photos' 1 and 2: MCP ~35, PIP ~135, DIP ~17 degrees, the tip a little in front of the
    palm, below its MCP), or, with probability o_shape_p, rounded as in the photos' O-shape
    0 (MCP ~47, PIP ~60, DIP ~31, the tip well in front of the palm)."""

    mcp: tuple[float, float] = (20.0, 55.0)
    pip: tuple[float, float] = (115.0, 150.0)
    dip: tuple[float, float] = (5.0, 35.0)
    o_mcp: tuple[float, float] = (35.0, 60.0)
    o_pip: tuple[float, float] = (45.0, 75.0)
    o_dip: tuple[float, float] = (20.0, 45.0)
    o_shape_p: float = 0.15
    # The landmark model puts folded fingertips much closer to the palm plane than their
    # joint angles imply (photos' 1: tip 0.09 palm sizes in front of its MCP; folded at the
    # same angles in 3D: 0.4): the depth of a folded finger's joints is scaled by this.
    flatten: tuple[float, float] = (0.15, 0.45)
    thumb: tuple[float, float] = (0.8, 1.0)  # fraction of the swing to the folded position


def curl(c: np.ndarray, fingers: Iterable[int], rng: Optional[np.random.Generator] = None,
         ranges: CurlRange = CurlRange(), palm_sign: float = PALM_SIGN) -> np.ndarray:
    """Canonical landmarks with the given fingers (0 thumb, 1 index … 4 pinky) folded.

    Fingers fold at MCP, PIP and DIP about their own lateral axis, towards the palm; the
    thumb swings from its CMC joint across the palm, its tip to between the index and ring
    MCPs just in front of the palm (where the photos' folded thumbs are), and bends at MCP
    and IP towards the little finger. rng None: the middle of the folded-into-palm ranges
    (deterministic, for tests)."""
    out = np.array(c, dtype=np.float64, copy=True)
    palm = np.array([0.0, 0.0, palm_sign])

    def draw(lo_hi: tuple[float, float]) -> float:
        lo, hi = lo_hi
        return (lo + hi) / 2 if rng is None else float(rng.uniform(lo, hi))

    for f in sorted(set(fingers)):
        chain = CHAINS[f]
        if f == 0:
            frac = draw(ranges.thumb)
            target = 0.5 * (out[5] + out[13]) + 0.1 * palm
            d = out[4] - out[1]
            want = target - out[1]
            cosang = float(d @ want) / max(float(np.linalg.norm(d) * np.linalg.norm(want)), 1e-12)
            ang = float(np.arccos(np.clip(cosang, -1, 1))) * frac
            axis = np.cross(d, want)
            if float(np.linalg.norm(axis)) > 1e-9:
                out[[2, 3, 4]] = rotate(out[[2, 3, 4]], out[1], axis, ang)
            ulnar = np.array([-1.0, 0.0, 0.3 * palm_sign])
            _flex(out, 2, (3, 4), np.radians(draw((15.0, 35.0))), ulnar)
            _flex(out, 3, (4,), np.radians(draw((15.0, 35.0))), ulnar)
            continue
        o_shape = rng is not None and rng.random() < ranges.o_shape_p
        mcp_r, pip_r, dip_r = ((ranges.o_mcp, ranges.o_pip, ranges.o_dip) if o_shape
                               else (ranges.mcp, ranges.pip, ranges.dip))
        mcp, pip, dip, tip = chain
        _flex(out, mcp, (pip, dip, tip), np.radians(draw(mcp_r)), palm)
        _flex(out, pip, (dip, tip), np.radians(draw(pip_r)), palm)
        _flex(out, dip, (tip,), np.radians(draw(dip_r)), palm)
        if not o_shape:
            out[[pip, dip, tip], 2] = out[mcp, 2] + (out[[pip, dip, tip], 2] - out[mcp, 2]) * draw(ranges.flatten)
    return out


def canonical(landmarks: np.ndarray, handedness: str) -> np.ndarray:
    return palm_frame(landmarks, handedness)[0]


def random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    ang = np.radians(rng.uniform(-max_deg, max_deg))
    return rotate(np.eye(3), np.zeros(3), axis, ang)


@dataclass(frozen=True)
class LandmarkAugment:
    """What augment() draws; the recipe's `augment` mapping sets these."""

    tilt_deg: float = 25.0          # the hand turned in 3D before its depth is distorted
    z_scale: tuple[float, float] = (0.6, 1.4)  # depth estimated shallower / deeper
    jitter: float = 0.02            # per-coordinate noise, in palm sizes
    finger_length: tuple[float, float] = (0.85, 1.15)
    wrong_hand_p: float = 0.1       # mirrored with the label kept: the hand stage said the other hand
    curl_copies: int = 6            # curled variants per open hand ("5") in the training set

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> LandmarkAugment:
        d = dict(d or {})
        for k in ("z_scale", "finger_length"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


def lengthen(c: np.ndarray, rng: np.random.Generator, lo_hi: tuple[float, float]) -> np.ndarray:
    """Each finger's segments scaled by its own factor (the points beyond move along)."""
    out = c.copy()
    for chain in CHAINS:
        k = float(rng.uniform(*lo_hi))
        for j in range(1, 4):
            seg = c[chain[j]] - c[chain[j - 1]]
            out[chain[j]] = out[chain[j - 1]] + seg * k
    return out


def augment(c: np.ndarray, rng: np.random.Generator, a: LandmarkAugment) -> np.ndarray:
    """One random variant of canonical landmarks c (same count, handedness 'right')."""
    out = lengthen(c, rng, a.finger_length)
    out = out @ random_rotation(rng, a.tilt_deg).T
    out[:, 2] *= rng.uniform(*a.z_scale)
    out = out + rng.normal(scale=a.jitter, size=out.shape)
    if rng.random() < a.wrong_hand_p:
        out[:, 0] = -out[:, 0]
    return out


def curled_variants(c: np.ndarray, rng: np.random.Generator, copies: int
                    ) -> list[tuple[np.ndarray, int]]:
    """(canonical landmarks, count) for `copies` random subsets of an open hand's fingers
    folded; subset sizes are drawn evenly over 1..5, so every count 0..4 is made."""
    out = []
    for _ in range(copies):
        k = int(rng.integers(1, 6))
        fingers = rng.choice(5, size=k, replace=False)
        out.append((curl(c, fingers.tolist(), rng), 5 - k))
    return out
