"""Count fingers from a found hand: landmark features -> numpy softmax head.

LandmarkCounter(package, state_dir).count(hand) -> probabilities over its labels ("0".."5",
plus any a retrained head added). The user's retrained head under
<state_dir>/heads/<model>/head.npz is used when present and made for this package's
feature version, the shipped head.npz otherwise (a damaged user head is logged and the
shipped one runs, as for the image classifiers). Never mutated: a head change builds a
new counter.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from edge.errors import ModelError
from edge.hands.features import FEATURE_DIM, FEATURE_VERSION, landmark_features
from edge.runtime.classifier import Head, current_head_path, head_info
from edge.runtime.package import ModelPackage

log = logging.getLogger(__name__)

LANDMARK_COUNTER = "landmarks"  # model.json "counter" of a package that counts from landmarks


class HandLike(Protocol):
    """What counting needs of edge.hands.Hand."""

    landmarks: np.ndarray
    handedness: str


def is_landmark_package(package: ModelPackage) -> bool:
    return package.meta.get("counter") == LANDMARK_COUNTER


def check_landmark_package(package: ModelPackage) -> None:
    """ModelError unless package is a landmark counter this code can run (its feature version)."""
    if not is_landmark_package(package):
        raise ModelError(f"{package.name}: not a landmark counter (model.json 'counter' is "
                         f"{package.meta.get('counter')!r}, not {LANDMARK_COUNTER!r})")
    rt = package.retrainable or {}
    made = rt.get("features")
    if made != FEATURE_VERSION:
        raise ModelError(f"{package.name}: made for landmark features {made!r}, this fingercount "
                         f"computes {FEATURE_VERSION!r}: rebuild it (fingercount-convert build)")
    if int(rt.get("embedding_dim", -1)) != FEATURE_DIM:
        raise ModelError(f"{package.name}: embedding_dim {rt.get('embedding_dim')} is not the "
                         f"{FEATURE_DIM} features of {FEATURE_VERSION}")


def load_landmark_head(path: Path, package: ModelPackage) -> Head:
    """A head for this package's features; ModelError if unreadable or made for other ones."""
    head = Head.load(path)
    if head.W.shape[0] != FEATURE_DIM:
        raise ModelError(f"{path}: made for {head.W.shape[0]} features, {package.name} has {FEATURE_DIM}")
    made = head_info(head).get("features")
    if isinstance(made, str) and made != FEATURE_VERSION:
        raise ModelError(f"{path}: trained on landmark features {made!r}, {package.name} computes "
                         f"{FEATURE_VERSION!r}; retrain to make a head for these")
    return head


class LandmarkCounter:
    """Scores hands with a landmark package's head (the user's where present)."""

    def __init__(self, package: ModelPackage, state_dir: Optional[Path] = None,
                 head_path: Optional[Path] = None):
        check_landmark_package(package)
        self.package = package
        self.precision = "head"
        self.head_problem: Optional[str] = None
        self.user_head = False
        self.head_path = head_path or current_head_path(state_dir, package.name)
        head: Optional[Head] = None
        if self.head_path is not None:
            try:
                head = load_landmark_head(self.head_path, package)
                self.user_head = True
            except ModelError as e:
                if head_path is not None:  # asked for by path: an error, not a fallback
                    raise
                self.head_problem = f"{e}; running the shipped head (retrain or rollback replaces it)"
                log.error("ignoring the retrained head: %s", self.head_problem)
                self.head_path = None
        if head is None:
            head = load_landmark_head(package.file_path("head"), package)
        self.head = head
        self.labels = list(head.labels)

    @property
    def model_id(self) -> str:
        return f"{self.package.name}@{self.package.version}/landmarks" + ("+head" if self.user_head else "")

    def features(self, hand: HandLike) -> np.ndarray:
        return landmark_features(hand.landmarks, hand.handedness)

    def count(self, hand: HandLike) -> np.ndarray:
        """Probabilities (len(self.labels),) for one hand."""
        return self.head.predict(self.features(hand)[None, :])[0]
