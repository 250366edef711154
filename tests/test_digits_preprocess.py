"""The digit preprocessing (edge/runtime/digits.py): real inputs made to look like MNIST.

No TensorFlow: numpy, OpenCV, the committed fixtures and the shipped digits-cnn package."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.runtime.classifier import Classifier
from edge.runtime.digits import mnist_like, stroke_width
from edge.runtime.package import load_package
from edge.runtime.preprocess import decode_image, prepare, read_image
from tests.conftest import DATA, HANDS, MODELS

MNIST = DATA / "digits"  # the 500 MNIST digits digits-cnn holds out (tools/make_digit_fixtures.py)
DRAWN = DATA / "digits-drawn"


def _iou(a: np.ndarray, b: np.ndarray, level: int = 127) -> float:
    x, y = a > level, b > level
    return float((x & y).sum()) / max(int((x | y).sum()), 1)


def _seven(size: int = 280, ink: int = 0, bg: int = 255, scale: float = 1.0, at=(0.5, 0.5),
           width: int = 18) -> np.ndarray:
    """A 7 drawn with cv2.polylines like a canvas stroke."""
    img = np.full((size, size), bg, np.uint8)
    pts = np.array([[-0.35, -0.45], [0.35, -0.45], [-0.05, 0.45]]) * scale * size * 0.8
    pts += np.array(at) * size
    cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, ink, width, cv2.LINE_AA, shift=4)
    return img


def test_mnist_digits_pass_through_nearly_unchanged() -> None:
    """MNIST already is MNIST-normalised: training on mnist_like(MNIST) is training on MNIST."""
    files = sorted(MNIST.glob("*/*.png"))
    assert len(files) == 500
    ious, diffs = [], []
    for f in files:
        x = read_image(str(f))[:, :, 0]
        y = mnist_like(x)[:, :, 0]
        ious.append(_iou(x, y))
        diffs.append(np.abs(x.astype(int) - y).mean())
    # measured: median IoU 1.0, mean 0.99; the rest is specks dropped and thin strokes thickened
    assert np.median(ious) > 0.99 and np.mean(ious) > 0.95, (np.median(ious), np.mean(ious))
    assert np.median(diffs) < 1.0


def test_output_is_mnist_shaped() -> None:
    out = mnist_like(_seven())[:, :, 0]
    assert out.shape == (28, 28) and out.dtype == np.uint8
    ys, xs = np.nonzero(out > 0)
    assert max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) in (20, 21)  # the 20x20 box
    w = out.astype(np.float64)
    yy, xx = np.mgrid[0:28, 0:28]
    assert abs((w * yy).sum() / w.sum() - 14) <= 0.5 and abs((w * xx).sum() / w.sum() - 14) <= 0.5
    assert out.max() == 255 and out[0].max() == 0 and out[:, 0].max() == 0  # white ink, black border


def test_dark_and_light_backgrounds_give_the_same_digit() -> None:
    a = mnist_like(_seven(ink=0, bg=255))
    b = mnist_like(_seven(ink=255, bg=0))
    c = mnist_like(cv2.cvtColor(_seven(ink=30, bg=200), cv2.COLOR_GRAY2RGB))  # RGB, grey paper
    assert np.abs(a.astype(int) - b).max() <= 2
    assert _iou(a, c) > 0.9


def test_position_and_size_on_the_canvas_do_not_matter() -> None:
    big = mnist_like(_seven(scale=1.0, width=24))
    small = mnist_like(_seven(scale=0.35, at=(0.25, 0.3), width=8))
    assert _iou(big, small) > 0.7


def test_uneven_light_and_a_fine_pen_are_normalised() -> None:
    clean = mnist_like(_seven(size=480, width=26))
    page = _seven(size=480, ink=60, bg=255, width=4).astype(np.float32)  # a fine pen
    yy, xx = np.mgrid[0:480, 0:480]
    lit = np.clip(page * (0.55 + 0.45 * xx / 480) + np.random.default_rng(0).normal(0, 4, page.shape), 0, 255)
    out = mnist_like(lit.astype(np.uint8))
    assert _iou(clean, out) > 0.6
    m = (out[:, :, 0] > 127).astype(np.uint8)
    assert 1.4 <= stroke_width(m) <= 3.5  # thickened into MNIST's range


def test_no_ink_is_a_blank_input() -> None:
    assert not mnist_like(np.full((280, 280), 255, np.uint8)).any()
    assert not mnist_like(np.zeros((280, 280, 3), np.uint8)).any()
    noise = np.clip(128 + np.random.default_rng(1).normal(0, 3, (240, 320)), 0, 255).astype(np.uint8)
    assert not mnist_like(noise).any()


def test_a_mark_away_from_the_digit_and_an_edge_mark_are_dropped() -> None:
    img = _seven(scale=0.6)
    clean = mnist_like(img)
    cv2.circle(img, (250, 250), 6, 0, -1)  # a blot in a corner
    cv2.line(img, (0, 10), (60, 0), 0, 6)  # the page's edge in the frame
    assert _iou(clean, mnist_like(img)) > 0.95


def test_a_transparent_canvas_png_is_laid_on_a_contrasting_background() -> None:
    seven = _seven(ink=255, bg=0)
    for colour in (0, 255):  # black strokes, white strokes, on transparent black
        rgba = np.zeros((280, 280, 4), np.uint8)
        rgba[:, :, :3] = colour
        rgba[:, :, 3] = seven
        ok, png = cv2.imencode(".png", rgba)
        rgb = decode_image(png.tobytes())
        assert rgb.shape == (280, 280, 3)
        assert _iou(mnist_like(rgb), mnist_like(seven)) > 0.95
        # the background is the other side of the strokes: a real contrast, not black on black
        assert abs(int(rgb[5, 5, 0]) - colour) == 255


def test_classifier_preprocesses_by_the_package_task() -> None:
    digits = Classifier(load_package(MODELS / "digits-cnn"), "int8", threads=1)
    canvas = cv2.cvtColor(read_image(str(next(DRAWN.glob("7/*white*.png")))), cv2.COLOR_RGB2RGBA)[:, :, :3]
    assert np.array_equal(digits.preprocess(canvas), mnist_like(canvas))
    hands = Classifier(load_package(MODELS / "fingers-cnn"), "int8", threads=1)
    photo = read_image(str(next(HANDS.glob("3/*"))))
    h, w, c = hands.input_shape
    assert np.array_equal(hands.preprocess(photo), prepare(photo, h, w, c))


@pytest.mark.parametrize("roi", [(0, 0, 140, 140), (140, 140, 140, 140)])
def test_a_configured_roi_is_where_the_digit_is_looked_for(roi) -> None:
    img = np.full((280, 280), 255, np.uint8)
    img[:140, :140] = _seven(size=140)
    one = np.full((140, 140), 255, np.uint8)
    cv2.line(one, (70, 20), (70, 120), 0, 10)
    img[140:, 140:] = one
    out = mnist_like(img, roi=roi)
    want = mnist_like(img[roi[1]:roi[1] + 140, roi[0]:roi[0] + 140])
    assert np.array_equal(out, want)


def test_a_frame_with_no_ink_is_a_blank_digit_not_an_error() -> None:
    """A hand photo, a blank page or a flat grey frame through the digit model's preprocessing
    (bench --data and eval feed it whatever folder they are given)."""
    from edge.runtime.digits import mnist_like
    from edge.runtime.preprocess import read_image
    from tests.conftest import HANDS

    for frame in (np.full((480, 640, 3), 200, np.uint8), np.zeros((28, 28, 3), np.uint8),
                  read_image(str(sorted((HANDS / "3").glob("*.JPG"))[0]))):
        out = mnist_like(frame, 28, 28, 1)
        assert out.shape == (28, 28, 1) and out.dtype == np.uint8
