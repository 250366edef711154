"""fingercount classify IMAGE…: one JSON prediction per image on stdout."""

from __future__ import annotations

import argparse
import json
import sys
import time

from edge.config import Config
from edge.counting import HandCounter, analyse
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
        res = analyse(clf, rgb)
        label, conf, scores = None, 0.0, {}
        if res.probs is not None:
            label, conf = top(res.probs, clf.labels)
            scores = {lab: round(float(p), 4) for lab, p in zip(clf.labels, res.probs)}
        out = {"image": path, "label": label,
               "count": label_count(label) if label is not None and clf.package.task != "digit" else None,
               "confidence": round(conf, 4), "scores": scores, "model": clf.model_id}
        if isinstance(clf, HandCounter):  # the hand it counted, or why there is no count
            out["hand"] = clf.hand_info(res.hand)
            if getattr(args, "landmarks", False) and res.hand is not None:
                out["hand"]["landmarks"] = [[round(float(v), 1) for v in p] for p in res.hand.landmarks]
        out["timing_ms"] = {k: round(v, 2) for k, v in res.timing_ms.items()} | \
            {"total": round((time.perf_counter() - t0) * 1e3, 2)}
        print(json.dumps(out), flush=True)
    if failed:
        raise FingercountError(f"{failed} of {len(args.images)} image(s) could not be read")
    return 0
