"""Raw per-frame results -> a stable count: window average, confidence floor, hysteresis.

Pure and clock-free (the caller passes the time), so it is tested without threads or sleeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Stable:
    """The stable state: label None means "no hand / not sure"."""

    label: Optional[str]
    confidence: float
    since_ms: float


class Smoother:
    """Mean of the last `window` probability vectors; its top label becomes stable once it has
    held for `min_hold_ms`; a mean top probability below `min_confidence` means unsure (None)."""

    def __init__(self, labels: Sequence[str], window: int = 5, min_confidence: float = 0.6,
                 min_hold_ms: float = 300.0):
        if window < 1:
            raise ValueError("window must be >= 1")
        self.labels = list(labels)
        self.window = int(window)
        self.min_confidence = float(min_confidence)
        self.min_hold_ms = float(min_hold_ms)
        self._buf = np.zeros((self.window, len(self.labels)), dtype=np.float32)
        self._n = 0
        self._i = 0
        self._sum = np.zeros(len(self.labels), dtype=np.float64)  # running sum of the window
        self.stable = Stable(None, 0.0, 0.0)
        self._pending: Optional[str] = None
        self._pending_since = 0.0

    def reset(self, labels: Optional[Sequence[str]] = None) -> None:
        """Forget the window (e.g. after a model swap); a different label set resizes it."""
        if labels is not None and list(labels) != self.labels:
            self.labels = list(labels)
            self._buf = np.zeros((self.window, len(self.labels)), dtype=np.float32)
        self._n = self._i = 0
        self._sum = np.zeros(len(self.labels), dtype=np.float64)
        self._pending = None

    def mean(self) -> np.ndarray:
        return self._buf[: self._n].mean(axis=0) if self._n else self._buf[0] * 0

    def update(self, probs: np.ndarray, now_ms: float) -> Optional[Stable]:
        """Add one result; returns the new Stable when the stable state changed, else None."""
        # A running sum instead of a mean over the window each frame (this runs per frame on the
        # pipeline's critical path); re-summed once per lap so rounding cannot build up.
        if self._n == self.window:
            self._sum -= self._buf[self._i]
        self._buf[self._i] = probs
        self._sum += self._buf[self._i]
        self._i = (self._i + 1) % self.window
        self._n = min(self._n + 1, self.window)
        if self._i == 0:
            self._sum = self._buf[: self._n].sum(axis=0, dtype=np.float64)
        m = self._sum / self._n
        k = int(np.argmax(m))
        conf = float(m[k])
        candidate: Optional[str] = self.labels[k] if conf >= self.min_confidence else None
        if candidate == self.stable.label:
            self._pending = None
            if candidate is not None:
                self.stable = Stable(candidate, conf, self.stable.since_ms)
            return None
        if candidate != self._pending:
            self._pending, self._pending_since = candidate, now_ms
        if now_ms - self._pending_since >= self.min_hold_ms:
            self.stable = Stable(candidate, conf, now_ms)
            self._pending = None
            return self.stable
        return None
