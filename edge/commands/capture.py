"""`fingercount capture --label L [--camera SPEC] [--count N] [--interval S]`: store labelled samples."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING

from edge.errors import CameraError, SampleError

if TYPE_CHECKING:
    from edge.config import Config


def main(args: argparse.Namespace, cfg: Config) -> int:
    from edge.camera import camera_from_config
    from edge.personalize import check_label
    from edge.runtime.loader import open_classifier
    from edge.samples import counts_text, open_store

    if args.count < 1:
        raise SampleError("--count must be at least 1")
    # The model decides which labels are allowed (a non-retrainable one cannot learn new labels).
    label = check_label(args.label, open_classifier(cfg))
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
            sample = store.add(frame.rgb, label, source="cli")
            stored += 1
            print(json.dumps({"label": label, "path": str(sample.path), "sha256": sample.sha256,
                              "n": i + 1, "of": args.count}), flush=True)
        print(f"stored {stored} sample(s) under {label!r}; samples now: {counts_text(store.counts())}",
              flush=True)
    return 0
