"""capture -> preprocess -> invoke -> smooth -> results, every stage timed per frame.

Capture overlaps inference (the camera thread fills the next frame while this one is being
classified); the loop only ever takes the newest frame and never sleeps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from edge.camera import Camera, Frame
from edge.runtime.classifier import Classifier, label_count
from edge.smoothing import Smoother, Stable

STAGES = ("capture", "preprocess", "invoke", "smooth", "total")


@dataclass
class Result:
    """One classified frame (and, when the stable count changed with it, the new Stable)."""

    frame: Frame
    labels: list[str]
    probs: np.ndarray
    label: str
    confidence: float
    timing_ms: dict[str, float]
    model: str
    changed: Optional[Stable] = None

    @property
    def seq(self) -> int:
        return self.frame.seq

    @property
    def count(self) -> Optional[int]:
        return label_count(self.label)

    def prediction(self) -> dict[str, Any]:
        """The …/prediction payload."""
        return {
            "seq": self.frame.seq,
            "ts": round(self.frame.ts, 3),
            "label": self.label,
            "count": self.count,
            "confidence": round(self.confidence, 4),
            "scores": {lab: round(float(p), 4) for lab, p in zip(self.labels, self.probs)},
            "timing_ms": {k: round(v, 2) for k, v in self.timing_ms.items()},
            "model": self.model,
        }


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
    """Classifies the newest camera frame, one at a time, with the current classifier."""

    def __init__(self, camera: Camera, classifier: Classifier, smoother: Optional[Smoother] = None,
                 prepare_ahead: bool = True):
        self.camera = camera
        if prepare_ahead:
            camera.prepare = self._prepare_ahead
        self._classifier = classifier
        self._next: Optional[Classifier] = None
        self.smoother = smoother
        self.last_seq = 0
        self.frames = 0
        self.dropped = 0  # frames captured but never classified (the camera outran us)
        self.prepared_ahead = 0  # frames whose preprocessing the capture thread had done

    @property
    def classifier(self) -> Classifier:
        return self._next or self._classifier

    def set_classifier(self, new: Classifier) -> None:
        """Atomic from any thread: the next step() uses `new` (the frame in progress finishes
        on the old one); the smoother starts afresh with the new model's labels."""
        self._next = new

    def _prepare_ahead(self, rgb: np.ndarray) -> tuple:
        """Capture thread: preprocess for the classifier the next step() will use."""
        clf = self._next or self._classifier
        t0 = time.perf_counter()
        pixels = clf.preprocess(rgb)
        return clf, pixels, (time.perf_counter() - t0) * 1e3

    def step(self, timeout: Optional[float] = 1.0) -> Optional[Result]:
        """Classify the next fresh frame; None if none came within timeout."""
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
        ahead = frame.prepared
        # made in the capture thread while the last frame was being invoked (same classifier)
        if ahead is not None and ahead[0] is clf:
            pixels = ahead[1]
            self.prepared_ahead += 1
        else:
            pixels = clf.preprocess(frame.rgb)
        t2 = time.perf_counter()
        probs = clf.invoke(pixels)
        t3 = time.perf_counter()
        k = int(np.argmax(probs))
        changed = None
        if self.smoother is not None:
            if self.smoother.labels != clf.labels:
                self.smoother.reset(clf.labels)
            changed = self.smoother.update(probs, frame.mono * 1e3 if frame.mono else t3 * 1e3)
        t4 = time.perf_counter()
        self.frames += 1
        timing = {"capture": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3,
                  "invoke": (t3 - t2) * 1e3, "smooth": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3}
        return Result(frame, clf.labels, probs, clf.labels[k], float(probs[k]), timing,
                      clf.model_id, changed)

    def run(self, frames: int, warmup: int = 3, timeout: float = 10.0) -> PipelineReport:
        """Classify `frames` fresh frames (after `warmup` untimed ones) and time every stage.

        Usable without MQTT: the benchmark calls it with a started Camera."""
        for _ in range(max(0, warmup)):
            if self.step(timeout) is None:
                raise TimeoutError(f"no frame from {self.camera.source.name} within {timeout} s")
        stages: dict[str, list[float]] = {s: [] for s in STAGES}
        dropped0 = self.dropped
        t0 = time.perf_counter()
        done = 0
        while done < frames:
            r = self.step(timeout)
            if r is None:
                raise TimeoutError(f"no frame from {self.camera.source.name} within {timeout} s")
            for s in STAGES:
                stages[s].append(r.timing_ms[s])
            done += 1
        seconds = time.perf_counter() - t0
        return PipelineReport(done, seconds, self.dropped - dropped0, self._classifier.model_id, stages)
