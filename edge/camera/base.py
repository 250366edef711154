"""The FrameSource protocol every camera backend implements, and the Frame it yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured image: RGB uint8 (H, W, 3), wall-clock time, capture sequence number."""

    rgb: np.ndarray
    ts: float
    seq: int
    mono: float = 0.0  # time.monotonic() at capture, for ages and stall checks
    # (classifier, model-input pixels, ms) when Camera.prepare made them in the capture
    # thread, overlapping the previous frame's invoke; None otherwise.
    prepared: Optional[tuple] = None


@runtime_checkable
class FrameSource(Protocol):
    """A camera backend. Only the capture thread calls open/read; close may come from any thread
    (to unblock a read that hangs on a stalled device)."""

    name: str

    def open(self) -> None:
        """Start the device; raise edge.errors.CameraError with a clear reason if it cannot."""

    def read(self) -> Optional[np.ndarray]:
        """Block until the next frame and return it as RGB uint8, or None if the device gave
        nothing this time (the capture thread then counts time towards a stall)."""

    def close(self) -> None:
        """Release the device; safe to call twice or before open."""
