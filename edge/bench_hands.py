"""bench --pipeline behind the hand stage: the real pipeline with tracking on and off, beside
the raw invoke rate of the models it ran.

The raw rate is what the same models cost with nothing around them: each model's bare
invoke time (measured in blocks between the pipeline's blocks, so load from elsewhere hits
both) weighted by how often the pipeline ran it: palm detection on the frames it detected,
landmarks per landmark run, the counter per hand counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edge.errors import FingercountError

CLIP = Path(__file__).resolve().parent.parent / "tests" / "data" / "hands-clip" / "epsrc-set1.mp4"


def bundled_hand_clip() -> Path:
    """The short webcam clip (a hand, the empty wall, a hand) next to the installation."""
    for cand in (CLIP, Path("/usr/share/fingercount/hands-clip/epsrc-set1.mp4")):
        if cand.is_file():
            return cand
    raise FingercountError("no bundled hand clip found; pass --camera replay:VIDEO_OR_DIR or a real camera")


def _bare_ms(run: Callable[[], Any], n: int) -> list[float]:
    from edge.bench import time_invokes

    return time_invokes(run, n)


class ModelClock:
    """Bare invoke times of the models a HandCounter runs, on one real frame."""

    def __init__(self, counter: Any, rgb: np.ndarray):
        stage = counter.stage
        stage.reset()
        hand = counter.locate(rgb)
        stage.reset()
        if hand is None:
            raise FingercountError("bench --pipeline: the camera's first frame shows no hand to time the "
                                   "landmark and count models on")
        from edge.hands.palm import letterbox
        from edge.hands.roi import crop, rect_from_landmarks

        palm, lm = stage.palm.model, stage.landmark.model
        palm.set_input(letterbox(rgb, stage.palm.size)[0])
        lm.set_input(crop(rgb, rect_from_landmarks(hand.landmarks), stage.landmark.size))
        self.runs: dict[str, Callable[[], Any]] = {
            "detect": palm.interp.invoke, "landmarks": lm.interp.invoke,
            "count": partial(counter.count, rgb, hand)}
        self.ms: dict[str, list[float]] = {k: [] for k in self.runs}

    def block(self, n: int) -> None:
        for k, run in self.runs.items():
            self.ms[k] += _bare_ms(run, max(20, n // 2))

    def p50(self) -> dict[str, float]:
        return {k: float(np.median(v)) for k, v in self.ms.items()}


class HandsSeen:
    """Per result: was a hand found, was it tracked (no detection)."""

    def __init__(self) -> None:
        self.found: list[bool] = []
        self.tracked: list[bool] = []

    def __call__(self, r: Any) -> None:
        self.found.append(r.hand is not None)
        self.tracked.append(r.hand is not None and r.hand.tracked)


def run_hand_pipeline_bench(cfg: Any, pkg: Any, precision: str, threads: Sequence[int], frames: int,
                            warmup: int, camera_spec: Optional[str],
                            publish: Optional[Callable[[Optional[str]], None]]) -> list[dict]:
    """One record per thread count and tracking setting (on, then off)."""
    from edge.bench import _camera_source, _pipeline_loop
    from edge.camera import camera_from_config
    from edge.hands import load_hand_stage
    from edge.hands.counter import is_landmark_package
    from edge.machine import xnnpack_status
    from edge.pipeline import Pipeline
    from edge.redact import redact
    from edge.runtime.loader import open_counter
    from edge.smoothing import Smoother

    spec = camera_spec or f"replay:{bundled_hand_clip()}@0"
    h = cfg.hands
    records = []
    for n in threads:
        for tracking in (True, False):
            stage = load_hand_stage(cfg.resolved_models_dir(), h.palm, h.landmark, h.precision, n,
                                    tracking, h.min_detection, h.min_presence, h.mirror_retry,
                                    h.retry_pad)
            counter = open_counter(cfg, pkg, precision, n, stage)
            cam = camera_from_config(cfg.camera, _camera_source(spec, cfg))
            sm = cfg.smoothing
            pipe = Pipeline(cam, counter, Smoother(counter.labels, sm.window, sm.min_confidence,
                                                   sm.min_hold_ms))
            with cam:
                first = pipe.step(10.0)
                if first is None:
                    raise FingercountError(f"camera {redact(spec)}: no frame within 10 s")
                clock = ModelClock(counter, first.frame.rgb)
                stage.reset()
                runs0 = (stage.palm_runs, stage.landmark_runs)
                seen = HandsSeen()
                rec = _pipeline_loop(pipe, frames, warmup, publish, cfg.publish.max_hz,
                                     between=clock.block, on_result=seen)
                shape = list(first.frame.rgb.shape)
            timed = rec["frames"] + warmup
            det = (stage.palm_runs - runs0[0]) / timed  # palm model runs, retries included
            lms = (stage.landmark_runs - runs0[1]) / timed
            found = float(np.mean(seen.found)) if seen.found else 0.0
            bare = clock.p50()
            model_ms = det * bare["detect"] + lms * bare["landmarks"] + found * bare["count"]
            rec.pop("block_fps", None)
            rec.update({
                # a landmark head has no precision of its own: the hand models' is the one that runs
                "model": pkg.name, "version": pkg.version,
                "precision": h.precision if is_landmark_package(pkg) else precision,
                "model_id": counter.model_id, "threads": n, "camera": redact(spec),
                "tracking": tracking, "hands": {"palm": h.palm, "landmark": h.landmark,
                                                "precision": h.precision},
                "head": counter.head is not None, "frame_shape": shape,
                "detections_per_frame": round(det, 3), "landmark_runs_per_frame": round(lms, 3),
                "hand_found": round(found, 3), "tracked": round(float(np.mean(seen.tracked)), 3) if seen.tracked else 0.0,
                "bare_ms": {k: round(v, 3) for k, v in bare.items()},
                "raw_invoke_mean_ms": model_ms, "invoke_fps": 1000.0 / model_ms if model_ms > 0 else 0.0,
                "xnnpack": xnnpack_status(stage.landmark.model.interp)})
            rec["ratio"] = rec["pipeline_fps"] / rec["invoke_fps"] if rec["invoke_fps"] else 0.0
            records.append(rec)
    return records
