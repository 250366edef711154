"""Smoothing: window average, confidence floor (null count), hysteresis; clock passed in."""

from __future__ import annotations

import numpy as np

from edge.smoothing import Smoother

LABELS = ["0", "1", "2", "3", "4", "5"]


def onehot(label: str, p: float = 0.95) -> np.ndarray:
    v = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1), dtype=np.float32)
    v[LABELS.index(label)] = p
    return v


def test_new_count_must_hold_min_hold_ms() -> None:
    s = Smoother(LABELS, window=1, min_confidence=0.6, min_hold_ms=300)
    assert s.update(onehot("3"), 0) is None
    assert s.update(onehot("3"), 299) is None
    changed = s.update(onehot("3"), 300)
    assert changed is not None and changed.label == "3" and changed.since_ms == 300
    assert s.stable.label == "3"


def test_flicker_shorter_than_hold_does_not_change_the_count() -> None:
    s = Smoother(LABELS, window=1, min_confidence=0.6, min_hold_ms=300)
    s.update(onehot("2"), 0)
    s.update(onehot("2"), 400)
    assert s.stable.label == "2"
    # a 200 ms flicker to "4" and back
    assert s.update(onehot("4"), 500) is None
    assert s.update(onehot("4"), 700) is None
    assert s.update(onehot("2"), 750) is None
    assert s.stable.label == "2"
    # the pending timer restarts: "4" needs a fresh 300 ms
    assert s.update(onehot("4"), 800) is None
    assert s.update(onehot("4"), 1099) is None
    assert s.update(onehot("4"), 1100).label == "4"


def test_low_confidence_makes_the_count_null() -> None:
    s = Smoother(LABELS, window=1, min_confidence=0.6, min_hold_ms=0)
    assert s.update(onehot("5"), 0).label == "5"
    unsure = np.full(6, 1 / 6, dtype=np.float32)
    changed = s.update(unsure, 10)
    assert changed is not None and changed.label is None
    assert s.stable.label is None


def test_window_averages_out_a_single_outlier() -> None:
    s = Smoother(LABELS, window=5, min_confidence=0.5, min_hold_ms=0)
    for t in range(5):
        s.update(onehot("1"), t)
    assert s.stable.label == "1"
    # one confident "3" among four "1"s: the mean still says "1"
    assert s.update(onehot("3", 0.99), 5) is None
    assert s.stable.label == "1"
    assert abs(float(s.mean()[1]) - (4 * 0.95 + 0.002) / 5) < 1e-3


def test_reset_with_new_labels_resizes() -> None:
    s = Smoother(LABELS, window=3, min_confidence=0.5, min_hold_ms=0)
    s.update(onehot("2"), 0)
    s.reset(["a", "b"])
    assert s.update(np.array([0.1, 0.9], dtype=np.float32), 1).label == "b"
