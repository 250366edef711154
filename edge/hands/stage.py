"""HandStage: find one hand per frame, detecting or tracking (the decision is made here only).

Detect on the frame when no hand is tracked; otherwise crop from the previous frame's
landmarks and skip detection. When the landmarks' presence drops below min_presence the
track is lost and detection runs again on the same frame, so a lost hand costs one
detection, not a frame without a hand. A detection that finds no hand runs once more on
the mirror image (mirror_retry): the palm detector finds some hands only mirrored.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import cv2
import numpy as np

from edge.errors import FingercountError, ModelError
from edge.hands.hand import Hand, handedness_label, landmark_box
from edge.hands.landmarks import LandmarkModel
from edge.hands.palm import Letterbox, PalmDetector
from edge.hands.roi import RotatedRect, crop, project, rect_from_landmarks, rect_from_palm
from edge.hands.tensors import TensorModel
from edge.runtime.package import ModelPackage, resolve_package

if TYPE_CHECKING:
    from edge.config import Config

PALM_TASK, LANDMARK_TASK = "palm-detection", "hand-landmark"
MIN_SIDE = 8  # frames smaller than this on a side cannot hold a hand the models would see


class FrameError(FingercountError, ValueError):
    """A frame the hand stage cannot read (wrong type, dims or channels)."""


def as_rgb(frame: np.ndarray) -> Optional[np.ndarray]:
    """An RGB uint8 (H, W, 3) view of the frame; None when it is empty or too small to hold a
    hand; FrameError when it is not an image at all."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"hand stage: a frame must be a numpy array, not {type(frame).__name__}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise FrameError(f"hand stage: frame shape {list(frame.shape)} is not an image (H, W, 1|3|4)")
    if frame.dtype != np.uint8:
        raise FrameError(f"hand stage: frame dtype {frame.dtype} is not uint8")
    if min(frame.shape[:2]) < MIN_SIDE:
        return None
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)


class HandStage:
    """Palm detection + landmarks with tracking; one hand (the best-scoring) per frame."""

    def __init__(self, palm: PalmDetector, landmark: LandmarkModel, tracking: bool = True,
                 min_detection: float = 0.5, min_presence: float = 0.5, mirror_retry: bool = True,
                 retry_pad: float = 0.25):
        """palm and landmark are the loaded models; thresholds are MediaPipe's defaults.
        mirror_retry: when detection finds no hand, detect once more on the mirror image
        (one more palm invoke on frames without a hand). retry_pad: then once more with the
        frame inside a black border this many times its long side (0: off)."""
        self.mirror_retry = mirror_retry
        self.retry_pad = retry_pad
        self.palm = palm
        self.landmark = landmark
        self.tracking = tracking
        self.min_detection = min_detection
        self.min_presence = min_presence
        palm.min_score = min_detection
        self.timing_ms: dict[str, float] = {"detect": 0.0, "landmarks": 0.0}
        self.last_score = 0.0  # best presence of the last frame, also when it was rejected
        self.landmark_runs = 0  # landmark model runs (one per tracked frame, one per palm tried)
        self.palm_runs = 0  # palm model runs (a frame with no hand: up to three, with the retries)
        self.detections = 0  # palm detections run since construction (tracking shows here)
        self._rect: Optional[RotatedRect] = None

    def reset(self) -> None:
        """Forget the tracked hand (a new video, the camera reopened)."""
        self._rect = None

    def _hand_in(self, rgb: np.ndarray, rect: RotatedRect, tracked: bool) -> Optional[Hand]:
        """Landmarks on the rect's crop; None when presence is below min_presence."""
        t0 = time.perf_counter()
        size = self.landmark.size
        res = self.landmark(crop(rgb, rect, size))
        self.landmark_runs += 1
        self.last_score = max(self.last_score, res.presence)
        hand = None
        # a model (or a damaged variant) that outputs NaN/inf is no hand, not a crash later on
        if res.presence >= self.min_presence and np.isfinite(res.landmarks).all():
            lm = project(res.landmarks, rect, size)
            hand = Hand(score=res.presence, box=landmark_box(lm), handedness=handedness_label(res.right),
                        landmarks=lm, tracked=tracked, world=res.world.astype(np.float32))
        self.timing_ms["landmarks"] += (time.perf_counter() - t0) * 1e3
        return hand

    def _detect(self, rgb: np.ndarray, x: np.ndarray, lb: Letterbox, mirrored: bool) -> Optional[Hand]:
        """Palm detection on the prepared input (its mirror image if asked), then landmarks
        on the frame itself around the best palm."""
        t0 = time.perf_counter()
        self.palm_runs += 1
        palms = self.palm.detect_prepared(x, lb, mirrored)
        self.timing_ms["detect"] += (time.perf_counter() - t0) * 1e3
        if not palms:
            return None
        return self._hand_in(rgb, rect_from_palm(palms[0].box, palms[0].keypoints), tracked=False)

    def __call__(self, frame: np.ndarray) -> Optional[Hand]:
        """The best hand in one RGB uint8 frame (any size), or None."""
        self.timing_ms = {"detect": 0.0, "landmarks": 0.0}
        self.last_score = 0.0
        rgb = as_rgb(frame)
        if rgb is None:
            self._rect = None
            return None
        hand = None
        if self.tracking and self._rect is not None:
            hand = self._hand_in(rgb, self._rect, tracked=True)
        if hand is None:  # nothing tracked, or the track was lost on this very frame
            self.detections += 1
            t0 = time.perf_counter()
            x, lb = self.palm.prepare(rgb)
            self.timing_ms["detect"] += (time.perf_counter() - t0) * 1e3
            hand = self._detect(rgb, x, lb, mirrored=False)
            if hand is None and self.mirror_retry:
                hand = self._detect(rgb, x, lb, mirrored=True)
            if hand is None and self.retry_pad > 0:
                hand = self._detect_zoomed_out(rgb)
        self._rect = rect_from_landmarks(hand.landmarks) if hand is not None and self.tracking else None
        return hand


    def _detect_zoomed_out(self, rgb: np.ndarray) -> Optional[Hand]:
        """Detection again with the frame inside a black border of retry_pad x its long side.
        The palm detector misses a hand that fills the frame (a close-up, a tight photo):
        with a border the hand is smaller and whole (sign-language photos of 0-5: hands found
        in 97 % of them, 84 % without). Only a frame with no hand pays for it."""
        h, w = rgb.shape[:2]
        p = int(round(max(h, w) * self.retry_pad))
        padded = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        self.detections += 1
        t0 = time.perf_counter()
        x, lb = self.palm.prepare(padded)
        self.timing_ms["detect"] += (time.perf_counter() - t0) * 1e3
        hand = self._detect(padded, x, lb, mirrored=False)
        if hand is None:
            return None
        lm = hand.landmarks - np.array([p, p, 0], np.float32)
        return replace(hand, landmarks=lm, box=landmark_box(lm))


def _hand_package(models_dir: Path, spec: str, task: str) -> ModelPackage:
    """A hand model package by name or path, checked to be of the task wanted."""
    pkg = resolve_package(spec, Path(models_dir))
    if not pkg.single_file and pkg.task != task:
        raise ModelError(f"{pkg.name}: is a {pkg.task} model, not a {task} model")
    return pkg


def load_model(pkg: ModelPackage, precision: str, threads: int) -> TensorModel:
    """One sha256-verified variant of a hand package in the interpreter; its input size must
    agree with model.json."""
    if pkg.single_file:
        precision = next(iter(pkg.variants))
    model = TensorModel(pkg.variant_bytes(precision), threads, f"{pkg.name} {precision}")
    if not pkg.single_file and model.input_hw != (pkg.input.height, pkg.input.width):
        raise ModelError(f"{pkg.name} {precision}: input {model.input_hw[0]}x{model.input_hw[1]} does "
                         f"not match model.json ({pkg.input.height}x{pkg.input.width})")
    return model


def load_hand_stage(models_dir: Path, palm: str = "palm-detection-lite", landmark: str = "hand-landmark-full",
                    precision: str = "fp32", threads: int = 1, tracking: bool = True,
                    min_detection: float = 0.5, min_presence: float = 0.5, mirror_retry: bool = True,
                    retry_pad: float = 0.25) -> HandStage:
    """A HandStage from two installed hand packages (names or paths); ModelError (one line)
    when one is missing, corrupt, of another task or lacks the precision."""
    palm_model = load_model(_hand_package(models_dir, palm, PALM_TASK), precision, threads)
    lm_model = load_model(_hand_package(models_dir, landmark, LANDMARK_TASK), precision, threads)
    return HandStage(PalmDetector(palm_model, min_detection), LandmarkModel(lm_model), tracking,
                     min_detection, min_presence, mirror_retry, retry_pad)


def hand_models_dir(cfg: Config) -> Path:
    """models_dir when it holds the configured hand models, else the shipped models: a user's
    own models folder (a retrained classifier, a copy) need not carry the hand models too."""
    from edge.config import shipped_models_dir

    mine = cfg.resolved_models_dir()
    h = cfg.hands
    if all((mine / name / "model.json").is_file() or Path(name).is_dir() for name in (h.palm, h.landmark)):
        return mine
    shipped = shipped_models_dir()
    return shipped if (shipped / h.palm / "model.json").is_file() else mine


def hand_stage_from_config(cfg: Config) -> HandStage:
    """The HandStage the configuration's hands: section describes (threads null = model.threads)."""
    h = cfg.hands
    return load_hand_stage(hand_models_dir(cfg), h.palm, h.landmark, h.precision,
                           h.threads or cfg.model.threads, h.tracking, h.min_detection, h.min_presence,
                           h.mirror_retry, h.retry_pad)
