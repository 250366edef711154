"""`fingercount capture --label L [--camera SPEC] [--count N] [--interval S]`: store labelled samples."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from edge.errors import CameraError, SampleError

if TYPE_CHECKING:
    from edge.config import Config


class LandmarkFinder:
    """The hand in a still frame, as the sample store keeps it."""

    def __init__(self, identity: str, stage: Any):
        self.identity, self.stage = identity, stage

    def find(self, rgb: Any) -> Any:
        from edge.sample_features import stored_hand

        self.stage.reset()
        return stored_hand(self.identity, self.stage(rgb))


def main(args: argparse.Namespace, cfg: Config) -> int:
    from edge.camera import camera_from_config
    from edge.counting import HandCounter
    from edge.personalize import check_label
    from edge.runtime.loader import open_classifier
    from edge.sample_features import hand_identity
    from edge.samples import counts_text, open_store

    if args.count < 1:
        raise SampleError("--count must be at least 1")
    # The model decides which labels are allowed (a non-retrainable one cannot learn new labels).
    clf = open_classifier(cfg)
    label = check_label(args.label, clf)
    finder = None  # behind the hand stage: each sample is stored with the hand found in it
    if isinstance(clf, HandCounter):
        finder = LandmarkFinder(hand_identity(cfg), clf.stage)
    cam = camera_from_config(cfg.camera)
    stored = 0
    with open_store(cfg) as store, cam:
        seq = 0
        for i in range(args.count):
            if i and args.interval > 0:
                time.sleep(args.interval)
            frame = cam.wait_next(seq, timeout=max(10.0, cfg.camera.stall_s * 2))
            if frame is None:
                raise CameraError(f"no frame from {cam.source.name} (stored {stored} of {args.count})")
            seq = frame.seq
            hand = finder.find(frame.rgb) if finder is not None else None
            sample = store.add(frame.rgb, label, source="cli", hand=hand)
            stored += 1
            line = {"label": label, "path": str(sample.path), "sha256": sample.sha256,
                    "n": i + 1, "of": args.count}
            if hand is not None:
                line["hand"] = hand.landmarks is not None
            print(json.dumps(line), flush=True)
        print(f"stored {stored} sample(s) under {label!r}; samples now: {counts_text(store.counts())}",
              flush=True)
    return 0
