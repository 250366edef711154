"""The zoomed-out retry: the palm detector misses a hand that fills the frame (the sign-language
photos are 100x100 close-ups); with a black border round the frame it finds it, and the hand's
landmarks come back in the frame's own pixels. Real photos, real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.hands.stage import load_hand_stage
from edge.runtime.preprocess import read_image
from tests.conftest import HANDS, MODELS

CLOSE_UPS = [HANDS / "0" / "IMG_5074.JPG", HANDS / "0" / "IMG_5266.JPG", HANDS / "1" / "IMG_4437.JPG"]
NO_HAND = sorted((Path(__file__).parent / "data" / "hands-real" / "epsrc" / "no-hand").glob("*.jpg"))


@pytest.fixture(scope="module")
def stages() -> tuple:
    return (load_hand_stage(MODELS, tracking=False, mirror_retry=False, retry_pad=0.0),
            load_hand_stage(MODELS, tracking=False, mirror_retry=False, retry_pad=0.25))


@pytest.mark.parametrize("path", CLOSE_UPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_close_up_hand_is_found_on_the_retry(stages: tuple, path: Path) -> None:
    plain, retry = stages
    rgb = read_image(str(path))
    assert plain(rgb) is None  # what the retry is for
    detections = retry.detections
    hand = retry(rgb)
    assert hand is not None and hand.score >= 0.5
    assert retry.detections == detections + 2  # the frame, then the frame in its border
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = hand.box  # in the photo's pixels, not the bordered frame's
    assert -0.2 * w < x0 < x1 < 1.2 * w and -0.2 * h < y0 < y1 < 1.2 * h
    assert x1 - x0 > 0.3 * w and y1 - y0 > 0.3 * h  # the hand fills the photo
    assert np.allclose(hand.box, (np.floor(hand.landmarks[:, 0].min()), np.floor(hand.landmarks[:, 1].min()),
                                  np.ceil(hand.landmarks[:, 0].max()), np.ceil(hand.landmarks[:, 1].max())))


@pytest.mark.parametrize("path", NO_HAND, ids=lambda p: p.name)
def test_the_retry_does_not_invent_a_hand(stages: tuple, path: Path) -> None:
    assert stages[1](read_image(str(path))) is None
