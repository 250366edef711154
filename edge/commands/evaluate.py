"""fingercount eval: score a model on class folders named by label."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.config import Config
from edge.evaluate import evaluate_dir, format_table
from edge.runtime.loader import open_classifier


def main(args: argparse.Namespace, cfg: Config) -> int:
    labels = args.labels.split(",") if getattr(args, "labels", None) else None
    clf = open_classifier(cfg, labels)
    res = evaluate_dir(clf, Path(args.data))
    res["model"] = clf.model_id
    res["precision"] = clf.precision
    for name in res["ignored_folders"]:
        print(f"note: folder '{name}' is not one of the model's labels; ignored", file=sys.stderr)
    for path in res["skipped_files"]:
        print(f"note: {path}: not a readable image; skipped", file=sys.stderr)
    print(f"{clf.model_id}: " + format_table(res))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2) + "\n")
    return 0
