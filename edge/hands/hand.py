"""The hand stage's public result: one hand in frame pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import cv2
import numpy as np

# What a frame without a hand reports (score: the best presence seen, where there was one).
NO_HAND_PAYLOAD: dict[str, Any] = {"present": False, "score": 0.0, "box": None, "handedness": None}


def no_hand_payload(score: float = 0.0) -> dict[str, Any]:
    """NO_HAND_PAYLOAD with the best (rejected) score of the frame."""
    return {**NO_HAND_PAYLOAD, "score": round(float(score), 4)}


def landmark_box(landmarks: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1: the integer bounding box of the landmarks' x, y."""
    x0, y0 = np.floor(landmarks[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(landmarks[:, :2].max(axis=0)).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


@dataclass(frozen=True, eq=False)
class Hand:
    """One hand found in a frame. (eq=False: a generated == would compare the landmark
    arrays as a tuple and raise; two hands are the same object or not.)"""

    score: float                      # presence score 0..1 from the landmark model
    box: tuple[int, int, int, int]    # x0, y0, x1, y1 frame pixels: bbox of the 21 landmarks
    handedness: str                   # "left" | "right"
    landmarks: np.ndarray = field(repr=False)  # (21, 3) float32, x,y frame pixels, z in the same scale
    tracked: bool                     # True when this frame's crop came from the previous landmarks
    # the model's world landmarks (21, 3): metres, origin at the hand's centre, no perspective
    # (for features like joint angles); None where not known
    world: Optional[np.ndarray] = field(default=None, repr=False)

    def payload(self) -> dict[str, Any]:
        """The prediction payload's `hand`: {"present": True, "score", "box", "handedness"}."""
        return {"present": True, "score": round(float(self.score), 4), "box": [int(v) for v in self.box],
                "handedness": self.handedness}

    def square_crop(self, rgb: np.ndarray, size: int, margin: float = 0.25) -> np.ndarray:
        """Axis-aligned square around the landmark box enlarged by margin on each side, padded
        with zeros where it leaves the frame, resized to size x size (INTER_AREA): what the
        crop classifiers see, in training and at run time."""
        x0, y0, x1, y1 = self.box
        side = max(x1 - x0, y1 - y0, 1) * (1.0 + 2.0 * margin)
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        half = side / 2.0
        sx0, sy0 = int(round(cx - half)), int(round(cy - half))
        n = max(1, int(round(side)))
        h, w = rgb.shape[:2]
        out = np.zeros((n, n) + rgb.shape[2:], dtype=rgb.dtype)
        fx0, fy0 = max(0, sx0), max(0, sy0)
        fx1, fy1 = min(w, sx0 + n), min(h, sy0 + n)
        if fx1 > fx0 and fy1 > fy0:
            out[fy0 - sy0:fy1 - sy0, fx0 - sx0:fx1 - sx0] = rgb[fy0:fy1, fx0:fx1]
        interp = cv2.INTER_AREA if n >= size else cv2.INTER_LINEAR
        return cv2.resize(out, (size, size), interpolation=interp)


def handedness_label(right: float) -> str:
    """'right' or 'left' from the model's right-hand probability."""
    return "right" if right > 0.5 else "left"


def optional_payload(hand: Optional[Hand], score: float = 0.0) -> dict[str, Any]:
    """hand.payload(), or the no-hand payload with the best rejected score."""
    return hand.payload() if hand is not None else no_hand_payload(score)
