"""Softmax regression in numpy: the on-device head trainer.

In the spirit of pycoral's learn/backprop/softmax_regression.py, but full-batch
L-BFGS (the problem is small and convex, so a few dozen steps converge) with
per-sample weights (class balance) and L2 on the weights. Features are standardised
for conditioning; the scaling is folded back into W and b so the result is a plain
softmax(x @ W + b) head, and a warm start is mapped into the standardised space.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np


@dataclass
class FitResult:
    W: np.ndarray  # (D, K) float32, applies to raw features
    b: np.ndarray  # (K,) float32
    steps: int
    loss: float
    seconds: float
    stopped: str  # "converged" | "max_steps" | "time_limit"
    history: list[float] = field(default_factory=list)


def class_balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Weight per sample so that every present class carries the same total weight."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w_class = np.zeros(n_classes)
    w_class[present] = len(y) / (present.sum() * counts[present])
    return w_class[y]


def _loss_grad(theta: np.ndarray, X: np.ndarray, Y: np.ndarray, w: np.ndarray, l2: float,
               shape: tuple[int, int]) -> tuple[float, np.ndarray]:
    D, K = shape
    W = theta[:D * K].reshape(D, K)
    b = theta[D * K:]
    z = X @ W + b
    z -= z.max(axis=1, keepdims=True)
    ez = np.exp(z)
    s = ez.sum(axis=1, keepdims=True)
    logp = z - np.log(s)
    loss = -float((w * (Y * logp).sum(axis=1)).sum()) + 0.5 * l2 * float((W * W).sum())
    dz = (ez / s - Y) * w[:, None]
    gW = X.T @ dz + l2 * W
    gb = dz.sum(axis=0)
    return loss, np.concatenate([gW.ravel(), gb])


def fit_softmax(X: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-3,
                sample_weight: Optional[np.ndarray] = None,
                W0: Optional[np.ndarray] = None, b0: Optional[np.ndarray] = None,
                max_steps: int = 200, max_seconds: Optional[float] = None, tol: float = 1e-6,
                history: int = 10,
                progress: Optional[Callable[[int, float], None]] = None) -> FitResult:
    """Minimise weighted mean cross-entropy + l2/2 |W|^2 with L-BFGS.

    X: (N, D) features, y: (N,) int class ids in [0, n_classes). sample_weight defaults
    to class-balanced. W0/b0 (raw-feature space) warm-start the optimisation. progress is
    called after every step (an exception from it, e.g. a cancel, ends the fit).
    """
    t0 = time.monotonic()
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.int64)
    N = X.shape[0]
    K = int(n_classes)
    if N == 0 or K < 2:
        raise ValueError("need samples of at least two classes")
    w = class_balanced_weights(y, K) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = w / w.sum()  # weighted *mean* loss: l2 means the same whatever N is
    mu_all = X.mean(axis=0)
    sd_all = X.std(axis=0)
    # Constant features (dead ReLU units are common in embeddings) carry no information:
    # optimising without them is exact (their weights would only decay to 0) and much faster.
    active = sd_all > 1e-6 * max(1.0, float(sd_all.max(initial=0.0)))
    if not active.any():
        active[:] = True
        sd_all[:] = 1.0
    D_full, D = X.shape[1], int(active.sum())
    mu, sd = mu_all[active], sd_all[active]
    Xs = (X[:, active] - mu) / sd
    Y = np.zeros((N, K))
    Y[np.arange(N), y] = 1.0
    if W0 is not None:
        # raw: x W0 + b0 = ((x - mu)/sd) (sd W0) + (b0 + mu W0); constant features fold into b
        W0 = np.asarray(W0, np.float64)
        Ws = W0[active] * sd[:, None]
        bs = np.asarray(b0, np.float64) + mu_all @ W0
        theta = np.concatenate([Ws.ravel(), bs])
    else:
        theta = np.zeros(D * K + K)
    f, g = _loss_grad(theta, Xs, Y, w, l2, (D, K))
    hist = [f]
    S: list[np.ndarray] = []
    Yk: list[np.ndarray] = []
    stopped = "max_steps"
    step = 0
    for step in range(1, max_steps + 1):
        if max_seconds is not None and time.monotonic() - t0 > max_seconds:
            stopped = "time_limit"
            step -= 1
            break
        d = _two_loop(g, S, Yk)
        if float(d @ g) >= 0:  # not a descent direction: restart from steepest descent
            S.clear()
            Yk.clear()
            d = -g
        a = 1.0 if S else min(1.0, 1.0 / max(1e-12, float(np.abs(g).sum())))
        while True:  # Armijo backtracking
            theta_new = theta + a * d
            f_new, g_new = _loss_grad(theta_new, Xs, Y, w, l2, (D, K))
            if f_new <= f + 1e-4 * a * float(d @ g) or a < 1e-10:
                break
            a *= 0.5
        s_vec, y_vec = theta_new - theta, g_new - g
        if float(s_vec @ y_vec) > 1e-10:
            S.append(s_vec)
            Yk.append(y_vec)
            if len(S) > history:
                S.pop(0)
                Yk.pop(0)
        converged = abs(f - f_new) <= tol * max(1.0, abs(f)) or float(np.abs(g_new).max()) < 1e-7
        theta, f, g = theta_new, f_new, g_new
        hist.append(f)
        if progress is not None:
            progress(step, f)
        if converged:
            stopped = "converged"
            break
    Ws = theta[:D * K].reshape(D, K)
    bs = theta[D * K:]
    W = np.zeros((D_full, K))
    W[active] = Ws / sd[:, None]
    b = bs - mu @ W[active]
    return FitResult(W.astype(np.float32), b.astype(np.float32), step, float(f),
                     time.monotonic() - t0, stopped, hist)


def _two_loop(g: np.ndarray, S: Sequence[np.ndarray], Yk: Sequence[np.ndarray]) -> np.ndarray:
    """L-BFGS two-loop recursion: approximately -H^-1 g."""
    q = g.copy()
    alphas = []
    for s, yv in zip(reversed(S), reversed(Yk)):
        rho = 1.0 / float(yv @ s)
        a = rho * float(s @ q)
        alphas.append((a, rho, s, yv))
        q -= a * yv
    if S:
        q *= float(S[-1] @ Yk[-1]) / float(Yk[-1] @ Yk[-1])
    for a, rho, s, yv in reversed(alphas):
        beta = rho * float(yv @ q)
        q += (a - beta) * s
    return -q


def accuracy(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    if len(y) == 0:
        return float("nan")
    return float((np.argmax(np.asarray(X, np.float32) @ W + b, axis=1) == y).mean())
