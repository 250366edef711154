"""Pipeline on the real replay camera and a real shipped model through the real interpreter."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from edge.camera import Camera, open_source
from edge.pipeline import STAGES, Pipeline
from edge.runtime.classifier import Classifier
from edge.runtime.package import load_package
from edge.smoothing import Smoother
from tests.conftest import HANDS, MODELS


def model_dir() -> Path:
    """A shipped finger-count package: fingers-cnn (the fast one), else fingers-mobilenet.
    FC_TEST_MODEL may point at another package directory."""
    if os.environ.get("FC_TEST_MODEL"):
        return Path(os.environ["FC_TEST_MODEL"])
    for name in ("fingers-cnn", "fingers-mobilenet"):
        if (MODELS / name / "model.json").is_file():
            return MODELS / name
    pytest.fail(f"no finger-count model package in {MODELS}: build them with `make models` "
                "(or check out the committed models/)", pytrace=False)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(load_package(model_dir()), "int8", threads=1)


def test_run_times_every_stage_and_never_repeats_a_frame(classifier: Classifier) -> None:
    with Camera(open_source(f"replay:{HANDS}@0")) as cam:
        pipe = Pipeline(cam, classifier, Smoother(classifier.labels))
        seqs = []
        for _ in range(20):
            r = pipe.step(5)
            assert r is not None
            seqs.append(r.seq)
            assert r.label in classifier.labels
            assert abs(float(r.probs.sum()) - 1) < 0.02
            assert set(r.timing_ms) == set(STAGES)
            assert r.timing_ms["invoke"] > 0
        rep = pipe.run(50, warmup=0)
    assert len(set(seqs)) == len(seqs) and seqs == sorted(seqs)
    assert rep.frames == 50 and rep.fps > 0
    s = rep.summary()
    for stage in STAGES:
        assert len(rep.stages[stage]) == 50
        assert s[f"{stage}_ms"]["p95"] >= s[f"{stage}_ms"]["p50"] >= 0
    assert s["model"] == classifier.model_id


def test_slow_consumer_skips_to_the_newest_frame(classifier: Classifier) -> None:
    with Camera(open_source(f"replay:{HANDS}@100")) as cam:
        pipe = Pipeline(cam, classifier)
        last = 0
        for _ in range(8):
            r = pipe.step(5)
            assert r is not None and r.seq > last
            # the frame classified is the newest one there was when we asked
            assert cam.seq - r.seq <= 1
            last = r.seq
            time.sleep(0.05)
    assert pipe.dropped > 0  # frames captured while we slept were dropped, not queued


def test_capture_thread_prepares_the_next_frame(classifier: Classifier) -> None:
    """The camera thread preprocesses frame N+1 while frame N is invoked (no timing
    thresholds here: the bench measures the ratio). Results equal inline preprocessing."""
    with Camera(open_source(f"replay:{HANDS}@0")) as cam:
        pipe = Pipeline(cam, classifier, Smoother(classifier.labels))
        results = [pipe.step(5) for _ in range(60)]
    assert all(r is not None for r in results)
    assert pipe.prepared_ahead >= 50, pipe.prepared_ahead
    for r in results[-10:]:
        inline = classifier.invoke(classifier.preprocess(r.frame.rgb))
        assert np.allclose(inline, r.probs)


def test_swap_takes_effect_on_the_next_frame(classifier: Classifier) -> None:
    other = Classifier(load_package(model_dir()), "fp32", threads=1)
    with Camera(open_source(f"replay:{HANDS}@0")) as cam:
        pipe = Pipeline(cam, classifier, Smoother(classifier.labels))
        assert pipe.step(5).model.endswith("/int8")
        pipe.set_classifier(other)
        assert pipe.step(5).model.endswith("/fp32")


def _sideways_hands(dst: Path) -> None:
    """The bundled photos as a camera mounted a quarter turn anticlockwise would see them."""
    import cv2

    for lab_dir in (HANDS / str(i) for i in range(6)):  # the finger counts
        (dst / lab_dir.name).mkdir(parents=True)
        for f in sorted(lab_dir.iterdir()):
            img = cv2.imread(str(f))
            cv2.imwrite(str(dst / lab_dir.name / f"{f.stem}.png"), cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE))


def test_camera_rotate_turns_a_sideways_camera_upright(classifier: Classifier, tmp_path: Path) -> None:
    _sideways_hands(tmp_path)

    def accuracy(rotate: int) -> float:
        right = total = 0
        for lab_dir in sorted(tmp_path.iterdir()):
            with Camera(open_source(f"replay:{lab_dir}@0"), rotate=rotate) as cam:
                pipe = Pipeline(cam, classifier)
                n = len(list(lab_dir.iterdir()))
                for _ in range(n):
                    r = pipe.step(5)
                    right += r.label == lab_dir.name
                    total += 1
        return right / total

    upright, sideways = accuracy(90), accuracy(0)
    assert upright >= 0.9, upright
    assert upright - sideways >= 0.3, (upright, sideways)
