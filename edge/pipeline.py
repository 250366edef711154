"""capture -> locate hand -> landmarks -> count -> smooth -> results, every stage timed per frame.

Capture overlaps inference (the camera thread fills the next frame while this one is being
counted); the loop only ever takes the newest frame and never sleeps. A finger counter runs
behind the hand stage (edge.counting.HandCounter): palm detection, skipped while the last
frame's landmarks track the hand, then 21 landmarks, then the count from the hand. No hand:
no scores, and the smoother hears "nothing" so the stable count falls to null. A model with
no hand stage (the digit model) classifies the whole frame: preprocess -> invoke.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from edge.camera import Camera, Frame
from edge.counting import Counter, HandCounter
from edge.hands import Hand
from edge.runtime.classifier import label_count
from edge.smoothing import Smoother, Stable

# timing_ms keys: "invoke" is the models' time (detect + landmarks + count on the hand path)
HAND_STAGES = ("capture", "detect", "landmarks", "count", "invoke", "smooth", "total")
FRAME_STAGES = ("capture", "preprocess", "invoke", "smooth", "total")
STAGES = FRAME_STAGES  # a whole-frame model (the digit model, a bare .tflite)


@dataclass
class Result:
    """One classified frame (and, when the stable count changed with it, the new Stable)."""

    frame: Frame
    labels: list[str]
    probs: Optional[np.ndarray]  # None: the hand stage found no hand
    label: Optional[str]
    confidence: float
    timing_ms: dict[str, float]
    model: str
    changed: Optional[Stable] = None
    hand: Optional[Hand] = None
    hand_info: Optional[dict[str, Any]] = None  # the payload's `hand`; None without a hand stage

    @property
    def seq(self) -> int:
        return self.frame.seq

    @property
    def count(self) -> Optional[int]:
        return None if self.label is None else label_count(self.label)

    def prediction(self) -> dict[str, Any]:
        """The …/prediction payload."""
        out: dict[str, Any] = {
            "seq": self.frame.seq,
            "ts": round(self.frame.ts, 3),
            "label": self.label,
            "count": self.count,
            "confidence": round(self.confidence, 4),
            "scores": {} if self.probs is None else
            {lab: round(float(p), 4) for lab, p in zip(self.labels, self.probs)},
            "timing_ms": {k: round(v, 2) for k, v in self.timing_ms.items()},
            "model": self.model,
        }
        if self.hand_info is not None:
            out["hand"] = self.hand_info
        return out


def percentile(values: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0


@dataclass
class PipelineReport:
    """What Pipeline.run measured."""

    frames: int
    seconds: float
    dropped: int
    model: str
    stages: dict[str, list[float]] = field(repr=False, default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frames": self.frames, "seconds": round(self.seconds, 3),
                               "pipeline_fps": round(self.fps, 2), "dropped": self.dropped,
                               "model": self.model}
        for name, vals in self.stages.items():
            out[f"{name}_ms"] = {"mean": round(float(np.mean(vals)), 3) if vals else 0.0,
                                 "p50": round(percentile(vals, 50), 3),
                                 "p95": round(percentile(vals, 95), 3)}
        return out


class Pipeline:
    """Counts the newest camera frame, one at a time, with the current counter."""

    def __init__(self, camera: Camera, classifier: Counter, smoother: Optional[Smoother] = None,
                 prepare_ahead: bool = True):
        self.camera = camera
        if prepare_ahead:
            camera.prepare = self._prepare_ahead
        self._classifier = classifier
        self._next: Optional[Counter] = None
        self.smoother = smoother
        self.last_seq = 0
        self.frames = 0
        self.dropped = 0  # frames captured but never counted (the camera outran us)
        self.prepared_ahead = 0  # frames whose preprocessing the capture thread had done

    @property
    def classifier(self) -> Counter:
        return self._next or self._classifier

    def set_classifier(self, new: Counter) -> None:
        """Atomic from any thread: the next step() uses `new` (the frame in progress finishes
        on the old one); the smoother starts afresh with the new model's labels."""
        self._next = new

    def _prepare_ahead(self, rgb: np.ndarray) -> Optional[tuple]:
        """Capture thread: preprocess for the classifier the next step() will use (a whole-
        frame model only: the hand path's crop depends on the hand)."""
        clf = self._next or self._classifier
        if isinstance(clf, HandCounter):
            return None
        t0 = time.perf_counter()
        pixels = clf.preprocess(rgb)
        return clf, pixels, (time.perf_counter() - t0) * 1e3

    def step(self, timeout: Optional[float] = 1.0) -> Optional[Result]:
        """Count the next fresh frame; None if none came within timeout."""
        t0 = time.perf_counter()
        frame = self.camera.wait_next(self.last_seq, timeout)
        if frame is None:
            return None
        t1 = time.perf_counter()
        if self._next is not None:  # apply a swap here, in the pipeline's own thread
            self._classifier, self._next = self._next, None
            if self.smoother is not None:
                self.smoother.reset(self._classifier.labels)
        clf = self._classifier
        if self.last_seq and frame.seq > self.last_seq + 1:
            self.dropped += frame.seq - self.last_seq - 1
        self.last_seq = frame.seq
        hand: Optional[Hand] = None
        hand_info = None
        if isinstance(clf, HandCounter):
            # locate: palm detection (skipped while tracking), then 21 landmarks on the hand crop
            hand = clf.locate(frame.rgb)
            t2 = time.perf_counter()
            # count: from the hand; no hand, no scores
            probs = clf.count(frame.rgb, hand) if hand is not None else None
            t3 = time.perf_counter()
            hand_info = clf.hand_info(hand)
            timing = {"capture": (t1 - t0) * 1e3, "detect": clf.stage.timing_ms.get("detect", 0.0),
                      "landmarks": clf.stage.timing_ms.get("landmarks", 0.0),
                      "count": (t3 - t2) * 1e3, "invoke": (t3 - t1) * 1e3}
        else:
            pixels = self._pixels(clf, frame)
            t2 = time.perf_counter()
            probs = clf.invoke(pixels)
            t3 = time.perf_counter()
            timing = {"capture": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3,
                      "invoke": (t3 - t2) * 1e3}
        # smooth: "no hand" is a frame of no scores, so the stable count falls to null
        changed = None
        if self.smoother is not None:
            if self.smoother.labels != clf.labels:
                self.smoother.reset(clf.labels)
            now_ms = frame.mono * 1e3 if frame.mono else t3 * 1e3
            changed = self.smoother.update(probs if probs is not None else
                                           np.zeros(len(clf.labels), np.float32), now_ms)
        t4 = time.perf_counter()
        self.frames += 1
        timing["smooth"] = (t4 - t3) * 1e3
        timing["total"] = (t4 - t0) * 1e3
        label, conf = None, 0.0
        if probs is not None:
            k = int(np.argmax(probs))
            label, conf = clf.labels[k], float(probs[k])
        return Result(frame, clf.labels, probs, label, conf, timing, clf.model_id, changed,
                      hand, hand_info)

    def _pixels(self, clf: Any, frame: Frame) -> np.ndarray:
        ahead = frame.prepared
        # made in the capture thread while the last frame was being invoked (same classifier)
        if ahead is not None and ahead[0] is clf:
            self.prepared_ahead += 1
            return ahead[1]
        return clf.preprocess(frame.rgb)

    def run(self, frames: int, warmup: int = 3, timeout: float = 10.0) -> PipelineReport:
        """Count `frames` fresh frames (after `warmup` untimed ones) and time every stage.

        Usable without MQTT: the benchmark calls it with a started Camera."""
        for _ in range(max(0, warmup)):
            if self.step(timeout) is None:
                raise TimeoutError(f"no frame from {self.camera.source.name} within {timeout} s")
        stages: dict[str, list[float]] = {}
        dropped0 = self.dropped
        t0 = time.perf_counter()
        done = 0
        while done < frames:
            r = self.step(timeout)
            if r is None:
                raise TimeoutError(f"no frame from {self.camera.source.name} within {timeout} s")
            for s, ms in r.timing_ms.items():
                stages.setdefault(s, []).append(ms)
            done += 1
        seconds = time.perf_counter() - t0
        return PipelineReport(done, seconds, self.dropped - dropped0, self._classifier.model_id, stages)
