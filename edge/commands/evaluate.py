"""fingercount eval: score a model on class folders named by label."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from edge.config import Config
from edge.errors import FingercountError
from edge.evaluate import class_folder_items, evaluate_dir, format_table
from edge.report_file import write_report
from edge.runtime.loader import open_classifier
from edge.runtime.package import ModelPackage
from edge.training_files import overlap, package_hashes


def training_overlap(package: ModelPackage, data: Path) -> Optional[int]:
    """How many of the images scored are the model's training images (None: it records none)."""
    hashes = package_hashes(package.root, package.provenance) if not package.single_file else None
    if hashes is None:
        return None
    items, _ = class_folder_items(data, package.labels)
    return len(overlap([p for p, _ in items], hashes))


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
    seen = training_overlap(clf.package, Path(args.data))
    if seen is not None:
        res["training_overlap"] = seen
        if seen:
            print(f"warning: {seen} of {res['n']} images in {args.data} are {clf.package.name}'s own "
                  "training images (its training_files.txt): their accuracy says how well it learned "
                  "them, not how it does on photos it has not seen", file=sys.stderr)
    if args.json:  # before printing: a closed stdout must not cost the file
        write_report(args.json, json.dumps(res, indent=2) + "\n")
    print(f"{clf.model_id}: " + format_table(res), flush=True)
    return 0
