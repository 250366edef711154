"""The per-frame path behind the hand stage (locate -> landmarks -> count -> smooth) on the real
replay camera, the real hand models and the shipped landmark counter: counts where there is a
hand, null where there is none, tracking on a video, odd frames that do not stop it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera import Camera, open_source
from edge.config import load_config
from edge.counting import HandCounter
from edge.pipeline import HAND_STAGES, Pipeline
from edge.runtime.loader import open_classifier
from edge.smoothing import Smoother
from tests.conftest import MODELS

DATA = Path(__file__).parent / "data"
CLIP = DATA / "hands-clip" / "epsrc-set1.mp4"
REAL = DATA / "hands-real" / "epsrc"


def counter(tmp_path: Path, tracking: bool = True, name: str = "fingers-landmarks") -> HandCounter:
    cfg = load_config(None, {"models_dir": str(MODELS), "state_dir": str(tmp_path / "state"),
                             "model": {"name": name, "threads": 1},
                             "hands": {"tracking": tracking}}, environ={})
    clf = open_classifier(cfg)
    assert isinstance(clf, HandCounter)
    return clf


def test_a_hand_is_counted_and_no_hand_is_null(tmp_path: Path) -> None:
    clf = counter(tmp_path, tracking=False)
    for folder, want in (("3", 3), ("5", 5)):
        with Camera(open_source(f"replay:{REAL / folder}@0")) as cam:
            pipe = Pipeline(cam, clf, Smoother(clf.labels, window=1, min_hold_ms=0))
            r = pipe.step(10)
        assert r is not None and r.hand is not None
        p = r.prediction()
        assert p["hand"]["present"] is True and p["hand"]["box"] == list(r.hand.box)
        assert set(p["timing_ms"]) == set(HAND_STAGES)
        assert p["count"] == want, p
    with Camera(open_source(f"replay:{REAL / 'no-hand'}@0")) as cam:
        pipe = Pipeline(cam, clf, Smoother(clf.labels, window=1, min_hold_ms=0))
        for _ in range(3):
            r = pipe.step(10)
            p = r.prediction()
            assert r.hand is None and p["count"] is None and p["label"] is None and p["scores"] == {}
            assert p["hand"]["present"] is False and p["hand"]["box"] is None
            assert pipe.smoother.stable.label is None


def test_tracking_on_a_video_skips_detection_and_the_count_follows_the_hand(tmp_path: Path) -> None:
    """The clip: 30 frames of a 3 moving steadily, 8 of the empty wall, 30 of a 5."""
    clf = counter(tmp_path, tracking=True)
    with Camera(open_source(f"replay:{CLIP}@0")) as cam:
        pipe = Pipeline(cam, clf, Smoother(clf.labels, window=3, min_hold_ms=0))
        results = [pipe.step(10) for _ in range(68)]
    assert all(r is not None for r in results)
    tracked = [r for r in results if r.hand is not None and r.hand.tracked]
    detected = [r for r in results if r.timing_ms["detect"] > 0]
    assert len(tracked) >= 56, len(tracked)  # detection only where the hand appears or is lost
    assert len(detected) <= 12, len(detected)  # frame 0, the 8 wall frames, the first 5
    assert all(r.hand is None for r in results[31:37])  # the empty wall
    counts = [r.count for r in results]
    assert counts[:30].count(3) >= 28 and counts[38:].count(5) >= 28, counts
    stable = [r.changed.label for r in results if r.changed is not None]
    assert "3" in stable and None in stable and "5" in stable  # 3, then null (no hand), then 5


def _odd_frames(dst: Path) -> None:
    dst.mkdir()
    cv2.imwrite(str(dst / "a-1x1.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(dst / "b-grey.png"), np.full((480, 640, 3), 128, np.uint8))
    cv2.imwrite(str(dst / "c-black.png"), np.zeros((480, 640, 3), np.uint8))
    cv2.imwrite(str(dst / "d-hand.jpg"), cv2.imread(str(REAL / "3" / "set1_three_1.jpg")))


@pytest.mark.parametrize("tracking", [True, False])
def test_odd_frames_give_no_hand_and_counting_goes_on(tmp_path: Path, tracking: bool) -> None:
    _odd_frames(tmp_path / "odd")
    clf = counter(tmp_path, tracking=tracking)
    with Camera(open_source(f"replay:{tmp_path / 'odd'}@0")) as cam:
        pipe = Pipeline(cam, clf, Smoother(clf.labels))
        results = [pipe.step(10) for _ in range(8)]  # twice round the folder
    assert [r.hand is not None for r in results] == [False, False, False, True] * 2
    assert [r.count for r in results if r.hand is not None] == [3, 3]
