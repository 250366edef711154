"""Landmark features: the invariances they promise, and fingers curled on real open hands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.landmark_augment import PALM_SIGN, canonical, curl
from edge.hands import load_hand_stage
from edge.hands.features import FEATURE_DIM, GROUPS, columns, landmark_features, palm_frame
from edge.runtime.preprocess import read_image
from tests.synthetic_hand import in_image, open_hand

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "tests" / "data" / "hands-real"
MODELS = ROOT / "models"


@pytest.fixture(scope="module")
def real() -> dict[str, list[tuple[np.ndarray, str]]]:
    """Landmarks of the committed photos by folder (epsrc/5, sign-language-digits/1, …)."""
    stage = load_hand_stage(MODELS, tracking=False)
    out: dict[str, list[tuple[np.ndarray, str]]] = {}
    for p in sorted(PHOTOS.glob("*/*/*")):
        if p.suffix.lower() not in (".jpg", ".png"):
            continue
        stage.reset()
        hand = stage(read_image(str(p)))
        if hand is not None:
            out.setdefault(f"{p.parent.parent.name}/{p.parent.name}", []).append(
                (hand.landmarks, hand.handedness))
    return out


def _turn(lm: np.ndarray, deg: float, about: tuple[float, float] = (320, 240)) -> np.ndarray:
    a = np.radians(deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    out = lm.copy()
    out[:, :2] = (lm[:, :2] - about) @ rot.T + about
    return out


def _hands(real: dict) -> list[tuple[np.ndarray, str]]:
    return [h for k, v in real.items() for h in v] + [(in_image(open_hand()), "right")]


def test_translation_scale_rotation_and_mirror_leave_the_features_unchanged(real: dict) -> None:
    hands = _hands(real)
    assert len(hands) >= 10
    for lm, hd in hands:
        f = landmark_features(lm, hd)
        assert f.shape == (FEATURE_DIM,) and f.dtype == np.float32 and np.isfinite(f).all()
        moved = lm + np.array([137.0, -55.0, 0.0], np.float32)
        scaled = lm * 2.7
        mirrored = lm.copy()
        mirrored[:, 0] = 640 - mirrored[:, 0]  # the same hand seen in a mirror is the other hand
        other = "left" if hd == "right" else "right"
        for variant, h in ((moved, hd), (scaled, hd), (_turn(lm, 73), hd), (_turn(lm, -160), hd),
                           (mirrored, other)):
            np.testing.assert_allclose(landmark_features(variant, h), f, atol=2e-4)


def test_the_features_see_a_change_of_shape() -> None:
    c = open_hand()
    f = landmark_features(in_image(c), "right")
    assert not np.allclose(landmark_features(in_image(curl(c, [1])), "right"), f, atol=1e-2)
    # a mirrored hand kept as the same hand is not the same hand: the palm's normal flips
    mirrored = in_image(c)
    mirrored[:, 0] = 640 - mirrored[:, 0]
    assert not np.allclose(landmark_features(mirrored, "right"), f, atol=1e-2)


@pytest.mark.parametrize("bad", [np.zeros((20, 3)), np.zeros((21, 3)), np.full((21, 3), np.nan)])
def test_bad_landmarks_are_one_clear_error(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        landmark_features(bad, "right")
    with pytest.raises(ValueError):
        landmark_features(in_image(open_hand()), "both")


def test_feature_groups_cover_every_column_once() -> None:
    counts = sum(columns([g]).astype(int) for g in GROUPS)
    assert (counts == 1).all() and len(counts) == FEATURE_DIM


def test_folded_fingers_of_real_hands_lie_on_the_palm_side(real: dict) -> None:
    """PALM_SIGN, which curl() folds towards, is where the hand stage puts real folded fingers:
    ring and pinky of the photos' '1' and '2' (folded into the palm), below their MCP, in front."""
    folded = [(canonical(lm, h), f) for key in ("sign-language-digits/1", "sign-language-digits/2",
                                                 "epsrc/1", "epsrc/2")
              for lm, h in real.get(key, []) for f in (16, 20)]
    assert len(folded) >= 6
    dz = np.array([c[tip, 2] - c[tip - 3, 2] for c, tip in folded])
    assert (np.sign(dz) == PALM_SIGN).mean() >= 0.75, dz


def test_palm_frame_axes() -> None:
    c, size = palm_frame(in_image(open_hand(), angle_deg=40, scale=90), "right")
    assert np.allclose(c[0], 0) and size == pytest.approx(90 * np.mean(
        [np.linalg.norm(open_hand()[i]) for i in (5, 9, 17)]), rel=1e-4)
    assert c[9][1] > 0 and abs(c[9][0]) < 1e-6 and c[5][0] > 0 > c[17][0]
