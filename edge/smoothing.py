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
        # The window as plain floats: with a handful of labels numpy's per-call cost (~0.5 us
        # an operation) is most of the work, and this runs per frame on the critical path.
        self._rows: list[list[float]] = []
        self._i = 0
        self._sum = [0.0] * len(self.labels)  # running sum of the window
        self.stable = Stable(None, 0.0, 0.0)
        self._pending: Optional[str] = None
        self._pending_since = 0.0

    def reset(self, labels: Optional[Sequence[str]] = None) -> None:
        """Forget the window (e.g. after a model swap); a different label set resizes it."""
        if labels is not None:
            self.labels = list(labels)
        self._rows = []
        self._i = 0
        self._sum = [0.0] * len(self.labels)
        self._pending = None

    def mean(self) -> np.ndarray:
        n = len(self._rows)
        return np.asarray(self._sum, np.float64) / n if n else np.zeros(len(self.labels))

    def update(self, probs: np.ndarray, now_ms: float) -> Optional[Stable]:
        """Add one result; returns the new Stable when the stable state changed, else None."""
        p = probs.tolist()
        rows = self._rows
        if len(rows) < self.window:
            rows.append(p)
            self._sum = [a + b for a, b in zip(self._sum, p)]
        else:
            old = rows[self._i]
            rows[self._i] = p
            self._i = (self._i + 1) % self.window
            if self._i == 0:  # re-summed once per lap so rounding cannot build up
                self._sum = [sum(col) for col in zip(*rows)]
            else:
                self._sum = [a - o + b for a, o, b in zip(self._sum, old, p)]
        top = max(self._sum)
        k = self._sum.index(top)
        conf = top / len(rows)
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
