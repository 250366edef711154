"""fingercount classify IMAGE…: one JSON prediction per image on stdout."""

from __future__ import annotations

import argparse
import json
import sys
import time

from edge.config import Config
from edge.errors import FingercountError
from edge.runtime.classifier import label_count, top
from edge.runtime.loader import open_classifier
from edge.runtime.preprocess import read_image


def main(args: argparse.Namespace, cfg: Config) -> int:
    clf = open_classifier(cfg)  # ModelError: one line, exit 2 (--labels arrives as model.labels)
    failed = 0
    for path in args.images:
        try:
            rgb = read_image(path)
        except ValueError as e:  # unreadable: say so, go on with the others
            print(f"fingercount: error: {e}", file=sys.stderr)
            failed += 1
            continue
        t0 = time.perf_counter()
        probs, timing = clf.classify(rgb)
        label, conf = top(probs, clf.labels)
        print(json.dumps({
            "image": path, "label": label, "count": label_count(label) if clf.package.task != "digit" else None,
            "confidence": round(conf, 4),
            "scores": {lab: round(float(p), 4) for lab, p in zip(clf.labels, probs)},
            "model": clf.model_id,
            "timing_ms": {k: round(v, 2) for k, v in timing.items()}
            | {"total": round((time.perf_counter() - t0) * 1e3, 2)},
        }), flush=True)
    if failed:
        raise FingercountError(f"{failed} of {len(args.images)} image(s) could not be read")
    return 0
