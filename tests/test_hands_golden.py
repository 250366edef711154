"""The hand stage on committed real photos, through the real models and runtime, against
tests/data/golden/hands.json (written by `python -m converter.golden_hands`).

Tolerances: on the machine that wrote the goldens the results repeat exactly. Another CPU
or runtime version rounds differently inside XNNPACK; a landmark may then move by a
fraction of a pixel. LANDMARK_TOL (a share of the frame's long side) allows 1 % on the
mean landmark and 3 % on the worst one: far below what a wrong crop, rotation or decoding
moves them (tens of pixels)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.hands import Hand, HandStage, load_hand_stage
from edge.runtime.package import load_package
from edge.runtime.preprocess import read_image
from tests.conftest import DATA, MODELS

GOLDEN = DATA / "golden" / "hands.json"
PHOTOS = DATA / "hands-real"
MEAN_TOL, MAX_TOL, SCORE_TOL = 0.01, 0.03, 0.02
REGENERATE = "check the change, then run `python -m converter.golden_hands` and commit the result"


def _golden() -> dict:
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing: {REGENERATE}", pytrace=False)
    return json.loads(GOLDEN.read_text())


def _pairs() -> list[tuple[str, str]]:
    return [(p["palm"], p["landmark"]) for p in _golden()["pairs"]]


def test_committed_photos_and_their_licences() -> None:
    files = [p for p in PHOTOS.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1.5e6
    assert (PHOTOS / "README.md").is_file()
    assert "Attribution-ShareAlike 4.0" in (PHOTOS / "epsrc" / "LICENCE").read_text()
    assert "Apache License" in (PHOTOS / "sign-language-digits" / "LICENSE").read_text()
    golden = _golden()
    on_disk = {p.relative_to(PHOTOS).as_posix() for p in files if p.suffix.lower() in (".jpg", ".png")}
    for pair in golden["pairs"]:
        assert set(pair["results"]) == on_disk, "photos were added or removed: " + REGENERATE
        assert pair["palm"].startswith("palm-detection") and pair["landmark"].startswith("hand-landmark")
        for name, sha in pair["sha256"].items():
            assert load_package(MODELS / name).variants["fp32"]["sha256"] == sha, \
                f"{name} is not the model the goldens were made with: {REGENERATE}"


@pytest.fixture(scope="module", params=range(2), ids=lambda i: ("palm-lite+landmark-full", "palm-full+landmark-lite")[i])
def pair(request) -> tuple[HandStage, dict]:
    spec = _golden()["pairs"][request.param]
    return load_hand_stage(MODELS, spec["palm"], spec["landmark"], "fp32", threads=1, tracking=False), spec


def test_golden_landmarks(pair: tuple[HandStage, dict]) -> None:
    stage, spec = pair
    found = 0
    for rel, want in sorted(spec["results"].items()):
        rgb = read_image(str(PHOTOS / rel))
        hand = stage(rgb)
        if want is None:
            assert hand is None, f"{rel}: a hand (score {hand.score:.3f}) where the golden has none"
            continue
        assert hand is not None, f"{rel}: no hand (best presence {stage.last_score:.3f}); golden {want['score']}"
        found += 1
        assert isinstance(hand, Hand) and not hand.tracked
        assert hand.handedness == want["handedness"], rel
        assert abs(hand.score - want["score"]) <= SCORE_TOL, rel
        side = max(rgb.shape[:2])
        d = np.linalg.norm(hand.landmarks[:, :2] - np.asarray(want["landmarks"])[:, :2], axis=1)
        assert d.mean() <= MEAN_TOL * side and d.max() <= MAX_TOL * side, \
            f"{rel}: landmarks moved {d.mean():.2f} px on average, {d.max():.2f} px at most"
        assert np.abs(np.asarray(hand.box) - want["box"]).max() <= MAX_TOL * side, rel
        assert hand.landmarks.shape == (21, 3) and hand.landmarks.dtype == np.float32
        # world landmarks: metres around the hand's centre (a hand spans ~0.1-0.25 m)
        assert hand.world is not None and hand.world.shape == (21, 3)
        assert 0.05 < float(np.ptp(hand.world[:, :2], axis=0).max()) < 0.4, rel
    assert found == 17  # 11 webcam frames + 6 studio photos have a hand, 3 office frames none


def test_no_hand_photos_give_none() -> None:
    stage = load_hand_stage(MODELS, tracking=True)
    for p in sorted((PHOTOS / "epsrc" / "no-hand").glob("*.jpg")):
        assert stage(read_image(str(p))) is None, p.name
        assert stage.timing_ms["detect"] > 0  # (landmarks may have run on a palm candidate)


def test_every_hand_photo_gets_a_hand_whatever_the_model_pair() -> None:
    """The 11 webcam and 6 studio photos with a hand: each of the four models finds them."""
    with_hand = [rel for rel, v in _golden()["pairs"][0]["results"].items() if v is not None]
    assert len(with_hand) == 17
    for palm in ("palm-detection-lite", "palm-detection-full"):
        for landmark in ("hand-landmark-lite", "hand-landmark-full"):
            stage = load_hand_stage(MODELS, palm, landmark, tracking=False)
            missed = [rel for rel in with_hand if stage(read_image(str(PHOTOS / rel))) is None]
            assert not missed, f"{palm} + {landmark} missed {missed}"


def test_handedness_of_a_mirrored_photo_flips(pair: tuple[HandStage, dict]) -> None:
    stage, spec = pair
    rel = "epsrc/4/set1_four_1.jpg"
    rgb = read_image(str(PHOTOS / rel))
    a, b = stage(rgb), stage(np.ascontiguousarray(rgb[:, ::-1]))
    assert a is not None and b is not None
    assert {a.handedness, b.handedness} == {"left", "right"}
    mirrored = b.landmarks[:, 0]
    assert np.abs((rgb.shape[1] - mirrored) - a.landmarks[:, 0]).mean() < 4.0


def test_square_crop_of_a_real_hand(pair: tuple[HandStage, dict]) -> None:
    stage, _ = pair
    rgb = read_image(str(PHOTOS / "epsrc" / "5" / "set2_five_4.jpg"))
    hand = stage(rgb)
    assert hand is not None
    sq = hand.square_crop(rgb, 96)
    assert sq.shape == (96, 96, 3) and sq.dtype == np.uint8
    assert hand.box[2] > rgb.shape[1]  # the fingers leave the frame: the crop is padded there
    assert sq[48, -1].max() == 0 and sq[48, 48].max() > 0


