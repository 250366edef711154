"""The fingers-landmarks package: it loads, counts real hands, reads curled hands by the fingers
left (fists as 0), and retrains on landmark features through a real sample store."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from converter.landmark_augment import canonical, curl
from edge.config import Config, load_config
from edge.errors import ModelError
from edge.hands import load_hand_stage
from edge.hands.counter import LandmarkCounter
from edge.hands.features import FEATURE_VERSION, landmark_features
from edge.heads import rollback
from edge.retrain import retrain
from edge.runtime.classifier import Classifier, Head, head_dir
from edge.runtime.package import load_package, scan_packages
from edge.runtime.preprocess import read_image
from edge.sample_features import sample_features
from edge.samples import SampleStore, StoredHand
from edge.softmax_regression import fit_softmax
from tests.conftest import HANDS, MODELS

PKG = MODELS / "fingers-landmarks"
REAL = Path(__file__).resolve().parent / "data" / "hands-real"


@pytest.fixture(scope="module")
def stage():
    return load_hand_stage(MODELS, tracking=False)


def hand_of(stage, path: Path):
    stage.reset()
    return stage(read_image(str(path)))


def test_the_package_loads_and_is_listed_beside_the_others() -> None:
    pkg = load_package(PKG)
    assert pkg.meta["counter"] == "landmarks" and pkg.variants == {}
    assert pkg.labels == [str(i) for i in range(6)]
    assert pkg.retrainable["features"] == FEATURE_VERSION
    names = {p.name for _, p in scan_packages(MODELS) if not isinstance(p, ModelError)}
    assert {"fingers-landmarks", "fingers-mobilenet", "palm-detection-lite"} <= names
    with pytest.raises(ModelError, match="hand landmarks"):
        Classifier(pkg, "int8")  # a whole frame is not what it counts from


def test_counts_the_committed_photos(stage) -> None:
    counter = LandmarkCounter(load_package(PKG))
    right = total = 0
    for p in sorted(REAL.glob("*/[0-5]/*")):
        hand = hand_of(stage, p)
        assert hand is not None, p
        probs = counter.count(hand)
        assert probs.shape == (6,) and abs(float(probs.sum()) - 1) < 1e-4
        right += counter.labels[int(np.argmax(probs))] == p.parent.name
        total += 1
    assert total >= 15 and right >= total - 1, f"{right} of {total}"


def test_curled_real_open_hands_read_the_fingers_left(stage) -> None:
    """The photos hold no fists: fold fingers of real open hands ("5") with the curl used for
    augmentation; all five folded must read 0, k folded 5 - k."""
    counter = LandmarkCounter(load_package(PKG))
    opens = [h for p in sorted(REAL.glob("*/5/*")) if (h := hand_of(stage, p)) is not None]
    assert len(opens) >= 3
    for h in opens:
        c = canonical(h.landmarks, h.handedness)
        for fingers, want in (([0, 1, 2, 3, 4], "0"), ([1, 2, 3, 4], "1"), ([0, 3, 4], "2"),
                              ([3, 4], "3"), ([0], "4"), ([4], "4"), ([], "5")):
            p = counter.head.predict(landmark_features(curl(c, fingers), "right")[None])[0]
            assert counter.labels[int(np.argmax(p))] == want, (fingers, p.round(3))


def test_a_head_trained_on_real_landmarks_counts_them(stage) -> None:
    X, y = [], []
    for p in sorted(REAL.glob("*/[1-5]/*")):
        h = hand_of(stage, p)
        X.append(landmark_features(h.landmarks, h.handedness))
        y.append(int(p.parent.name) - 1)
    fit = fit_softmax(np.stack(X), np.array(y), 5, l2=1e-4)
    assert (np.argmax(np.stack(X) @ fit.W + fit.b, axis=1) == np.array(y)).all()


def make_cfg(tmp: Path) -> Config:
    return load_config(None, {"state_dir": str(tmp / "state"), "models_dir": str(MODELS),
                              "model": {"name": "fingers-landmarks", "precision": "int8", "threads": 1},
                              "retrain": {"holdout": 0.34}}, environ={})


def rgb(p: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)


def test_retrain_on_landmark_features_through_the_sample_store(tmp_path: Path, stage) -> None:
    cfg = make_cfg(tmp_path)
    pkg = load_package(PKG)
    fx = sample_features(cfg, pkg, "int8")
    with SampleStore(cfg.state_dir) as store:
        # a new label the shipped head does not know: the sign-language "7", and the counts
        # 1 and 2; half the captures carry the hand the daemon saw, half are found at retrain
        without = 1  # the wall below
        for lab, folder in (("seven", "7"), ("1", "1"), ("2", "2")):
            found = [p for p in sorted((HANDS / folder).glob("*.JPG")) if hand_of(stage, p) is not None]
            for i, p in enumerate(found[:6]):
                frame = rgb(p)
                hand = fx.find_hand(frame) if i % 2 else None
                without += hand is None
                store.add(frame, lab, source="test", hand=hand)
        # no hand in it: stored, and skipped by the retrain with a count
        store.add(rgb(REAL / "epsrc" / "no-hand" / "empty-wall_set1.jpg"), "2", source="test")
        res = retrain(cfg, pkg, store, force=True, features=fx)
        assert res.skipped_no_hand == 1
        assert without >= 7 and res.embeddings_computed == without  # hands found at retrain
        assert res.swapped and "seven" in res.labels and res.new_labels == ["seven"]
        stored = store.hands(fx.hand_model)
        assert len(stored) == len(store) and all(f is not None and f[0] == FEATURE_VERSION
                                         for _, h, f in stored if h.landmarks is not None)
        # a second retrain finds every hand already stored: nothing recomputed
        again = retrain(cfg, pkg, store, force=True, features=fx)
        assert again.embeddings_computed == 0
    head_path = head_dir(cfg.state_dir, pkg.name) / "head.npz"
    info = json.loads(Head.load(head_path).info["info_json"])
    assert info["features"] == FEATURE_VERSION and info["hand_model"] == fx.hand_model
    counter = LandmarkCounter(pkg, cfg.state_dir)
    assert counter.user_head and "seven" in counter.labels
    seven = hand_of(stage, sorted((HANDS / "7").glob("*.JPG"))[-1])
    assert counter.labels[int(np.argmax(counter.count(seven)))] == "seven"
    before = head_path.read_bytes()
    assert rollback(cfg, pkg)["head"] == "retrained"  # back to the first retrained head
    assert head_path.read_bytes() != before and LandmarkCounter(pkg, cfg.state_dir).user_head


def test_a_damaged_user_head_falls_back_to_the_shipped_one(tmp_path: Path) -> None:
    pkg = load_package(PKG)
    d = head_dir(tmp_path, pkg.name)
    d.mkdir(parents=True)
    (d / "head.npz").write_bytes(b"not a head")
    counter = LandmarkCounter(pkg, tmp_path)
    assert not counter.user_head and counter.head_problem and counter.labels == pkg.labels
    # a head made for other features is refused too
    Head(np.zeros((7, 6), np.float32), np.zeros(6, np.float32), tuple(pkg.labels)).save(d / "head.npz")
    assert not LandmarkCounter(pkg, tmp_path).user_head


def test_a_stored_hand_survives_reopening(tmp_path: Path) -> None:
    lm = np.arange(63, dtype=np.float32).reshape(21, 3)
    with SampleStore(tmp_path) as store:
        store.add(np.zeros((8, 8, 3), np.uint8), "3", hand=StoredHand("m", lm, "left", 0.9))
        store.add(np.zeros((8, 8, 3), np.uint8), "3", hand=StoredHand("m"))
    with SampleStore(tmp_path) as store:
        (_, h1, _), (_, h2, _) = store.hands("m")
    assert h1.handedness == "left" and np.array_equal(h1.landmarks, lm) and h1.score == pytest.approx(0.9)
    assert h2.landmarks is None


def test_features_of_another_version_are_remade_from_the_stored_landmarks(tmp_path: Path) -> None:
    from edge.sample_features import LandmarkFeatures
    from tests.synthetic_hand import in_image, open_hand

    def no_stage():  # every sample has its hand stored: the hand stage must not be needed
        raise AssertionError("the hand stage ran")

    lm = in_image(open_hand())
    fx = LandmarkFeatures("m", no_stage)
    with SampleStore(tmp_path) as store:
        s = store.add(np.zeros((8, 8, 3), np.uint8), "5", hand=StoredHand("m", lm, "right", 0.9))
        store.set_features([(s.id, "hand-landmarks-v0", np.zeros(3, np.float32))])
        assert fx.prepare(store, None, None) == 0
        (_, _, (version, data)), = store.hands("m")
        assert version == FEATURE_VERSION
        np.testing.assert_array_equal(np.frombuffer(data, np.float32), landmark_features(lm, "right"))
        samples, X, skipped = fx.load(store)
        assert [x.id for x in samples] == [s.id] and skipped == 0
        np.testing.assert_array_equal(X[0], landmark_features(lm, "right"))
