"""Locate -> landmarks -> count for one image: what every command counts with.

A HandCounter puts the hand stage in front of a counting model: the landmark head
(fingers-landmarks), a crop classifier (fingers-mobilenet, fingers-cnn) run on the hand crop,
or a fusion of the two. It quacks like a Classifier (labels, package, model_id, head) so the
daemon, retraining and the commands handle either. No hand found: no scores, count null.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from edge.hands import Hand, HandStage
from edge.hands.hand import optional_payload
from edge.runtime.classifier import Classifier
from edge.runtime.preprocess import prepare


@dataclass
class Counted:
    """One image's result: the hand (None: none found) and the scores (None without a hand)."""

    hand: Optional[Hand]
    probs: Optional[np.ndarray]
    timing_ms: dict[str, float] = field(default_factory=dict)


def crop_scores(clf: Classifier, rgb: np.ndarray, hand: Hand) -> np.ndarray:
    """A crop classifier's scores on the square hand crop (what it was trained on)."""
    h, w, c = clf.input_shape
    crop = hand.square_crop(rgb, max(h, w))
    return clf.invoke(prepare(crop, h, w, c, None))


class HandCounter:
    """A hand stage + a counter; `model` is a landmark counter or a crop Classifier, `crop`
    an optional crop Classifier fused with the landmark counter (mean of the two)."""

    def __init__(self, stage: HandStage, model: Any, crop: Optional[Classifier] = None,
                 threads: int = 1):
        self.stage = stage
        self.model = model
        self.crop = crop
        self.threads = threads
        self.labels: list[str] = list(model.labels)
        if crop is not None and list(crop.labels) != self.labels:
            raise ValueError(f"cannot fuse {crop.model_id} ({crop.labels}) with {model.model_id}")

    # ---- what the daemon and retraining read from a Classifier -----------------------
    @property
    def package(self) -> Any:
        return self.model.package

    @property
    def precision(self) -> str:
        return str(self.model.precision)

    @property
    def roi(self) -> Any:
        return getattr(self.model, "roi", None)

    @property
    def head(self) -> Any:
        """The user's retrained head, None when the shipped one runs."""
        if isinstance(self.model, Classifier):
            return self.model.head
        return self.model.head if getattr(self.model, "user_head", False) else None

    @property
    def head_problem(self) -> Optional[str]:
        return self.model.head_problem

    @property
    def head_path(self) -> Any:
        return self.model.head_path

    @property
    def model_id(self) -> str:
        mid = str(self.model.model_id)
        return mid + (f"+{self.crop.model_id}" if self.crop is not None else "")

    def with_model(self, model: Any) -> HandCounter:
        """The same hand stage and fusion around another counter (a reloaded head)."""
        return HandCounter(self.stage, model, self.crop, self.threads)

    # ---- counting ---------------------------------------------------------------------
    def locate(self, rgb: np.ndarray) -> Optional[Hand]:
        return self.stage(rgb)

    def hand_info(self, hand: Optional[Hand]) -> dict[str, Any]:
        """The payload's `hand` for the last located frame (no hand: the best rejected score)."""
        return optional_payload(hand, self.stage.last_score)

    def count(self, rgb: np.ndarray, hand: Hand) -> np.ndarray:
        if isinstance(self.model, Classifier):
            return crop_scores(self.model, rgb, hand)
        probs = np.asarray(self.model.count(hand), np.float32)
        if self.crop is not None:
            probs = (probs + crop_scores(self.crop, rgb, hand)) / 2
        return probs

    def analyse(self, rgb: np.ndarray, still: bool = True) -> Counted:
        """One image. A still (classify, eval, capture) is never tracked from the last one."""
        if still:
            self.stage.reset()
        t0 = time.perf_counter()
        hand = self.locate(rgb)
        t1 = time.perf_counter()
        probs = None if hand is None else self.count(rgb, hand)
        t2 = time.perf_counter()
        timing = {**self.stage.timing_ms, "count": (t2 - t1) * 1e3, "invoke": (t2 - t0) * 1e3}
        return Counted(hand, probs, timing)

    def classify(self, rgb: np.ndarray) -> tuple[Optional[np.ndarray], dict[str, float]]:
        """A still image -> (probabilities, or None when no hand was found; timing ms)."""
        res = self.analyse(rgb)
        return res.probs, res.timing_ms


Counter = Union[Classifier, HandCounter]


def analyse(counter: Counter, rgb: np.ndarray) -> Counted:
    """A still image through the configured path: the hand stage where there is one."""
    if isinstance(counter, HandCounter):
        return counter.analyse(rgb)
    probs, timing = counter.classify(rgb)
    return Counted(None, probs, timing)
