"""fingercount eval: score a model on class folders named by label."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.config import Config
from edge.errors import FingercountError
from edge.evaluate import evaluate_dir, format_table
from edge.report_file import write_report
from edge.runtime.loader import open_classifier


def main(args: argparse.Namespace, cfg: Config) -> int:
    clf = open_classifier(cfg)  # --labels arrives as model.labels
    res = evaluate_dir(clf, Path(args.data), min_confidence=cfg.smoothing.min_confidence)
    res["model"] = clf.model_id
    res["precision"] = clf.precision
    for name in res["ignored_folders"]:
        print(f"note: folder '{name}' is not one of the model's labels; ignored", file=sys.stderr)
    for path in res["skipped_files"]:
        print(f"note: {path}: not a readable image; skipped", file=sys.stderr)
    if not res["n"]:
        raise FingercountError(f"{args.data}: no readable image in the label folders; nothing to score")
    if args.json:  # before printing: a closed stdout must not cost the file
        write_report(args.json, json.dumps(res, indent=2) + "\n")
    print(f"{clf.model_id}: " + format_table(res), flush=True)
    return 0
