"""Crop recipes (input.crop hand): the converter makes its training crops with the edge's own
hand stage and Hand.square_crop, on real photos (tests/data/hands-real, with their licences),
and leaves out, and counts, a photo where no hand is found. No TensorFlow here: the toy build
through TensorFlow is tests/test_converter.py's cnn_toy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.crops import MemoStage, crop_dataset, hand_spec, open_cache
from converter.data import Dataset, Split
from converter.errors import ConvertError
from converter.recipe import RecipeError, validate
from edge.counting import HandCounter, crop_scores
from edge.hands import load_hand_stage
from edge.runtime.classifier import Classifier
from edge.runtime.package import load_package
from edge.runtime.preprocess import prepare, read_image
from tests.conftest import DATA, MODELS

REAL = DATA / "hands-real"
# (label, photo) per split; the torso photo has no hand and poses as a "1" in training
TRAIN = [("1", "epsrc/1/set1_one_1.jpg"), ("1", "epsrc/no-hand/36.jpg"), ("3", "epsrc/3/set1_three_1.jpg"),
         ("5", "sign-language-digits/5/IMG_1123.JPG")]
VAL = [("2", "epsrc/2/set1_two_1.jpg"), ("4", "sign-language-digits/4/IMG_1122.JPG")]
TEST = [("4", "epsrc/4/set2_four_4.jpg"), ("2", "epsrc/no-hand/19.jpg")]
SIZE = 64


def _dataset(root: Path) -> Dataset:
    """The photos above as class folders under root (links), loaded as the converter holds them."""
    parts = {}
    for split, rows in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        frames, ys, names = [], [], []
        for label, rel in rows:
            name = f"{label}/{Path(rel).name}"
            (root / label).mkdir(parents=True, exist_ok=True)
            (root / name).symlink_to(REAL / rel)
            frames.append(read_image(str(root / name)))
            ys.append(int(label))
            names.append(name)
        parts[split] = Split(frames, np.array(ys, np.int64), names)
    return Dataset([str(i) for i in range(6)], parts["train"], parts["val"], parts["test"], str(root))


class _Recipe(dict):
    def get(self, key, default=None):  # Recipe.get's dotted lookup, for hand_spec
        return super().get(key, default)


@pytest.fixture(scope="module")
def cropped(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("photos")
    ds = _dataset(root)
    spec = hand_spec(_Recipe(hands={"models_dir": str(MODELS)}))
    cache = open_cache(spec, tmp_path_factory.mktemp("cache"))  # cold: every photo through the models
    out, info = crop_dataset(ds, SIZE, cache)
    return ds, out, info, cache, spec


def test_crops_come_from_the_hand_stage_and_are_what_the_edge_feeds(cropped) -> None:
    ds, out, info, cache, _ = cropped
    assert cache.computed == len(TRAIN) + len(VAL) + len(TEST) and cache.hits == 0
    stage = load_hand_stage(MODELS, tracking=False)  # the edge's own, as HandCounter runs it
    for split in ("train", "val"):
        src = getattr(ds, split)
        for crop, name in zip(getattr(out, split).frames, getattr(out, split).names):
            frame = src.frames[src.names.index(name)]
            hand = stage(frame)
            assert hand is not None, name
            edge_crop = hand.square_crop(frame, SIZE)
            # bit for bit the pixels edge.counting.crop_scores feeds a 64x64 model
            assert crop.shape == (SIZE, SIZE, 3) and np.array_equal(crop, edge_crop), name
            assert np.array_equal(prepare(crop, SIZE, SIZE, 3, None), edge_crop)
            assert crop.std() > 10  # a hand and its surroundings, not the zero padding


def test_a_photo_without_a_hand_is_left_out_of_training_and_counted(cropped) -> None:
    ds, out, info, _, _ = cropped
    assert info.no_hand["train"] == ["1/36.jpg"] and info.no_hand["val"] == []
    assert info.left_out == 1
    assert out.train.names == ["1/set1_one_1.jpg", "3/set1_three_1.jpg", "5/IMG_1123.JPG"]
    assert list(out.train.y) == [1, 3, 5] and len(out.train.frames) == 3
    # the test split keeps its whole photos (scored through the hand stage), the no-hand one too
    assert out.test.names == ds.test.names and out.test.frames[0].shape == (480, 640, 3)
    assert info.no_hand["test"] == ["2/19.jpg"] and len(info.test_crops) == 1


def test_a_second_build_reads_the_hand_stage_from_the_cache(cropped, tmp_path: Path) -> None:
    ds, out, _, cache, spec = cropped
    again = open_cache(spec, cache.path.parent)
    out2, info2 = crop_dataset(ds, SIZE, again)
    assert again.computed == 0 and again.hits == len(TRAIN) + len(VAL) + len(TEST)
    assert all(np.array_equal(a, b) for a, b in zip(out.train.frames, out2.train.frames))
    assert info2.no_hand == cropped[2].no_hand


def test_the_build_scores_whole_photos_through_the_hand_stage(cropped) -> None:
    """MemoStage answers as the stage does (once per frame); no hand: no scores, as eval."""
    ds, _, _, _, spec = cropped
    clf = Classifier(load_package(MODELS / "fingers-cnn"), "int8", threads=1)
    memo = MemoStage(spec.stage())
    counter = HandCounter(memo, clf)
    plain = HandCounter(load_hand_stage(MODELS, tracking=False), clf)
    for frame in ds.test.frames + ds.test.frames:
        a, b = counter.analyse(frame), plain.analyse(frame)
        assert (a.probs is None) == (b.probs is None)
        if a.probs is not None:
            assert a.hand is not None and b.probs is not None and np.array_equal(a.probs, b.probs)
            assert np.array_equal(a.probs, crop_scores(clf, frame, a.hand))
    assert counter.analyse(ds.test.frames[1]).probs is None  # the desk photo: no hand, no count
    once = load_hand_stage(MODELS, tracking=False)  # each distinct frame once (with its retries)
    for frame in ds.test.frames:
        once(frame)
    assert memo.detections == once.detections  # the repeats came from memory


def test_a_crop_recipe_needs_its_hand_models(tmp_path: Path) -> None:
    spec = hand_spec(_Recipe(hands={"models_dir": str(tmp_path)}))
    with pytest.raises(ConvertError, match=r"input.crop hand: the hand stage \(palm-detection-lite"):
        open_cache(spec, tmp_path)


def test_crop_hand_is_for_finger_counts() -> None:
    base = {"name": "x", "version": "1", "task": "digit", "kind": "digits",
            "labels": [str(i) for i in range(10)], "input": {"size": 28, "channels": 1, "color": "gray",
                                                             "crop": "hand"},
            "train": {"epochs": 1, "lr": 0.1}}
    with pytest.raises(RecipeError, match="'input.crop' hand is for task finger-count"):
        validate(base, "r.yaml")
    with pytest.raises(RecipeError, match="input.crop"):
        validate({**base, "task": "finger-count", "kind": "compact", "labels": [str(i) for i in range(6)],
                  "input": {"size": 64, "crop": "palm"}, "train": {"head_epochs": 1, "head_lr": 0.1}},
                 "r.yaml")
