"""Hand landmarks -> the feature vector the landmark count head learns from.

One function, used by the converter (training), the daemon (per frame), capture and
retrain, so train and serve cannot drift apart. FEATURE_VERSION names the definition; a
package records it, and a head or stored features made for another version are not used.

The features are invariant, by construction, to where the hand is in the frame
(wrist-relative), its size (divided by the palm's size), its orientation (coordinates in
the palm's own frame: wrist -> middle-finger MCP is "up", in 3D, so an in-plane turn and a
tilt of the hand both vanish) and to which hand it is (a left hand is mirrored into a
right one). Beside the coordinates, each finger's extension is described by quantities
that do not depend on how the count is shown: joint bend angles (MCP/PIP/DIP; CMC/MCP/IP
for the thumb), how much farther the tip is from the wrist than the middle joint, how
straight the finger is, and where the thumb tip is relative to the palm and the index
finger. These carry "0 = no finger extended": a fist and an O-shape both have every
finger bent, although their coordinates differ.

MediaPipe landmark order: 0 wrist, 1-4 thumb (CMC, MCP, IP, tip), 5-8 index (MCP, PIP,
DIP, tip), 9-12 middle, 13-16 ring, 17-20 pinky.
"""

from __future__ import annotations

import numpy as np

FEATURE_VERSION = "hand-landmarks-v1"
N_LANDMARKS = 21
WRIST = 0
THUMB = (1, 2, 3, 4)
FINGERS = ((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
CHAINS = (THUMB, *FINGERS)  # thumb, index, middle, ring, pinky
PALM = (0, 5, 9, 13, 17)

# 20 palm-frame points x 3, 15 bend angles, 5 tip/middle-joint ratios, 5 straightness,
# 5 tip-to-palm-centre distances, 7 thumb-position quantities, 5 soft "extended" indicators,
# their sum, and the sum again with the fingers' threshold at SUM_RATIOS (a head that
# weighs those can move the threshold: a user who never straightens a finger fully).
SUM_RATIOS = (0.95, 1.05, 1.25)
FEATURE_DIM = 60 + 15 + 5 + 5 + 5 + 7 + 5 + 1 + len(SUM_RATIOS)
_EPS = 1e-6
# Soft "extended" indicators, set on the hand stage's landmarks of the training photos
# (tools/curl_calibration.py): a finger is extended when its tip is > 1.15x as far from the
# wrist as its PIP joint (extended ~1.35, folded ~0.6); the thumb when its tip lies > 0.6
# palm sizes beyond the index MCP's line across the palm (extended ~1.0, folded -0.4..0.4;
# its distance ratio cannot tell: a thumb folded over the fingers still reaches far) and
# its tip is not on the index fingertip (an O-shape's thumb reaches out as far, but touches
# the index tip: <= 0.4 palm sizes in 95 % of the photos' 0s, >= 0.8 in their other counts).
FINGER_RATIO_AT, FINGER_RATIO_SOFT = 1.15, 0.08
THUMB_X_AT, THUMB_X_SOFT = 0.6, 0.1
THUMB_O_AT, THUMB_O_SOFT = 0.5, 0.06


# Column groups, for a head that learns from some of them only (the rest get weight 0).
GROUPS = {"coords": (0, 60), "angles": (60, 75), "ratios": (75, 80), "straightness": (80, 85),
          "tip_to_centre": (85, 90), "thumb": (90, 96),
          "extension": (96, FEATURE_DIM)}  # the thumb's reach, 5 soft indicators, their sums


def columns(groups: list[str] | tuple[str, ...]) -> np.ndarray:
    """Boolean mask (FEATURE_DIM,) of the named groups' columns."""
    mask = np.zeros(FEATURE_DIM, bool)
    for g in groups:
        lo, hi = GROUPS[g]
        mask[lo:hi] = True
    return mask


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0))))


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > _EPS else np.zeros_like(v)


def palm_frame(landmarks: np.ndarray, handedness: str) -> tuple[np.ndarray, float]:
    """(canonical landmarks (21, 3) float64, palm size in input units).

    Canonical: a left hand mirrored to a right one; wrist at the origin; axes x = across the
    palm (pinky -> index MCP, made orthogonal to y), y = wrist -> middle MCP, z = x cross y
    (the palm's normal); lengths in palm sizes (mean wrist -> index/middle/pinky MCP distance).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (N_LANDMARKS, 3):
        raise ValueError(f"landmarks must have shape (21, 3), not {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError("landmarks hold NaN or infinite values")
    p = lm - lm[WRIST]
    if handedness == "left":
        p[:, 0] = -p[:, 0]
    elif handedness != "right":
        raise ValueError(f"handedness must be 'left' or 'right', not {handedness!r}")
    size = float(np.mean([np.linalg.norm(p[i]) for i in (5, 9, 17)]))
    if size < _EPS:
        raise ValueError("degenerate landmarks: the palm has no size")
    y = _unit(p[9])
    a = p[5] - p[17]
    x = _unit(a - (a @ y) * y)
    if not x.any():  # index and pinky MCP on the wrist-middle line: no across direction
        raise ValueError("degenerate landmarks: the palm has no width")
    z = np.cross(x, y)
    rot = np.stack([x, y, z])
    return (p @ rot.T) / size, size


def _bend(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Angle (radians) between a->b and b->c: 0 for a straight joint, pi folded back."""
    u, v = _unit(b - a), _unit(c - b)
    return float(np.arccos(np.clip(u @ v, -1.0, 1.0)))


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def landmark_features(landmarks: np.ndarray, handedness: str) -> np.ndarray:
    """(21, 3) landmarks (x, y in frame pixels, z on the same scale) + "left"/"right" ->
    float32 (FEATURE_DIM,). ValueError for a wrong shape, NaNs or a degenerate hand."""
    c, _ = palm_frame(landmarks, handedness)
    coords = c[1:].ravel()  # the wrist is the origin: always 0
    angles = []
    ratios = []
    straight = []
    to_centre = []
    centre = c[list(PALM)].mean(axis=0)
    for chain in CHAINS:
        pts = [c[WRIST]] + [c[i] for i in chain]
        angles += [_bend(pts[k - 1], pts[k], pts[k + 1]) for k in (1, 2, 3)]
        base, mid, tip = c[chain[0]], c[chain[1]], c[chain[3]]
        # how much farther from the wrist the tip is than the finger's middle joint: ~1.5
        # extended, < 1 curled (for the thumb: the tip vs. its MCP joint)
        ratios.append(min(5.0, _dist(tip, c[WRIST]) / max(_dist(mid, c[WRIST]), _EPS)))
        path = sum(_dist(c[chain[k]], c[chain[k + 1]]) for k in range(3))
        straight.append(_dist(base, tip) / max(path, _EPS))
        to_centre.append(_dist(tip, centre))
    t = c[4]
    lateral = float(t[0])  # across the palm: beyond the index side when the thumb is out
    thumb = [_dist(t, c[5]), _dist(t, c[9]), _dist(t, c[17]), _dist(t, c[8]), _dist(t, c[6]),
             min(5.0, _dist(t, c[17]) / max(_dist(c[3], c[17]), _EPS)), lateral]
    soft = [_sigmoid((lateral - THUMB_X_AT) / THUMB_X_SOFT) * _sigmoid((thumb[3] - THUMB_O_AT) / THUMB_O_SOFT)]
    soft += [_sigmoid((r - FINGER_RATIO_AT) / FINGER_RATIO_SOFT) for r in ratios[1:]]
    sums = [soft[0] + sum(_sigmoid((r - at) / FINGER_RATIO_SOFT) for r in ratios[1:]) for at in SUM_RATIOS]
    out = np.concatenate([coords, angles, ratios, straight, to_centre, thumb, soft,
                          [sum(soft)], sums]).astype(np.float32)
    assert out.shape == (FEATURE_DIM,)
    return out


def features_many(landmarks: np.ndarray, handedness: list[str] | np.ndarray) -> np.ndarray:
    """(N, 21, 3) + N handedness strings -> (N, FEATURE_DIM) float32."""
    return np.stack([landmark_features(lm, h) for lm, h in zip(landmarks, handedness)]) \
        if len(landmarks) else np.zeros((0, FEATURE_DIM), np.float32)
