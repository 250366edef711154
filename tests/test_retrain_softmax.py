"""The numpy softmax-regression trainer on synthetic data (like pycoral's softmax_regression_test)."""

from __future__ import annotations

import numpy as np

from edge.softmax_regression import accuracy, class_balanced_weights, fit_softmax


def blobs(n: int, d: int, k: int, sep: float, seed: int, counts: list[int] | None = None):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, sep, (k, d))
    y = np.concatenate([np.full(c, j) for j, c in enumerate(counts)]) if counts else rng.integers(0, k, n)
    X = centers[y] + rng.normal(0, 1, (len(y), d))
    # uneven feature scales and offsets, like real embeddings
    X = X * rng.uniform(0.05, 20, d) + rng.uniform(-3, 3, d)
    return X.astype(np.float32), y


def test_learns_separable_classes() -> None:
    X, y = blobs(1200, 64, 5, 1.0, 0)
    fit = fit_softmax(X[:900], y[:900], 5, l2=1e-3)
    assert fit.W.shape == (64, 5) and fit.b.shape == (5,)
    assert accuracy(fit.W, fit.b, X[900:], y[900:]) >= 0.95
    assert fit.history[-1] < fit.history[0] * 0.2  # the loss went down a lot


def test_beats_chance_on_hard_data_and_l2_shrinks_weights() -> None:
    X, y = blobs(2000, 32, 4, 0.25, 1)
    weak = fit_softmax(X[:1500], y[:1500], 4, l2=1e-4)
    strong = fit_softmax(X[:1500], y[:1500], 4, l2=1.0)
    assert accuracy(weak.W, weak.b, X[1500:], y[1500:]) > 0.5  # chance is 0.25
    assert np.linalg.norm(strong.W) < np.linalg.norm(weak.W)


def test_class_balance_protects_a_rare_class() -> None:
    counts = [500, 500, 12]
    X, y = blobs(0, 16, 3, 0.45, 2, counts)
    Xt, yt = blobs(0, 16, 3, 0.45, 2, [1, 1, 400])  # same centres (same seed), rare class only...
    Xt, yt = Xt[2:], yt[2:]
    plain = fit_softmax(X, y, 3, l2=1e-3, sample_weight=np.ones(len(y)))
    balanced = fit_softmax(X, y, 3, l2=1e-3)
    assert accuracy(balanced.W, balanced.b, Xt, yt) > accuracy(plain.W, plain.b, Xt, yt)
    w = class_balanced_weights(y, 3)
    assert np.isclose(w[y == 2].sum(), w[y == 0].sum())


def test_warm_start_from_a_trained_head_converges_at_once() -> None:
    X, y = blobs(800, 32, 3, 1.0, 3)
    first = fit_softmax(X, y, 3, l2=1e-3)
    again = fit_softmax(X, y, 3, l2=1e-3, W0=first.W, b0=first.b)
    assert again.steps <= 3 and again.stopped == "converged"
    assert abs(again.loss - first.loss) < 1e-4


def test_time_limit_stops_early() -> None:
    # A budget already spent when the first step would start: deterministic on any machine
    # (a "too big to converge in 0.2 s" problem converged on a quiet CPU).
    X, y = blobs(2000, 64, 6, 0.3, 4)
    fit = fit_softmax(X, y, 6, l2=1e-6, max_steps=100000, max_seconds=1e-6, tol=0)
    assert fit.stopped == "time_limit" and fit.steps < 100000
    assert np.isfinite(fit.W).all()


def test_constant_features_are_dropped_exactly() -> None:
    X, y = blobs(900, 16, 3, 1.0, 5)
    dead = np.zeros((len(X), 48), np.float32)  # dead ReLU units: always 0
    dead[:, 10:] = 3.0  # or stuck at a constant
    Xd = np.concatenate([X, dead], axis=1)
    fit = fit_softmax(Xd, y, 3, l2=1e-3)
    ref = fit_softmax(X, y, 3, l2=1e-3)
    assert np.all(fit.W[16:] == 0)
    assert np.allclose(Xd @ fit.W + fit.b, X @ ref.W + ref.b, atol=1e-3)
    # a warm start with weights on the constant units keeps its logits (folded into b)
    W0 = np.concatenate([ref.W, np.full((48, 3), 0.5, np.float32)])
    b0 = ref.b - 0.5 * dead[0] @ np.full((48, 3), 1.0)
    warm = fit_softmax(Xd, y, 3, l2=1e-3, W0=W0, b0=b0)
    assert warm.steps <= 3
