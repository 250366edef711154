"""Accuracy, per-class precision/recall, macro-F1 and confusion of a classifier on labelled frames.

The converter records its metrics through this same code and the edge runtime, so
the numbers in model.json are what a device measures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from edge.camera.replay import IMAGE_SUFFIXES
from edge.errors import FingercountError
from edge.runtime.preprocess import read_image

log = logging.getLogger(__name__)



class DataError(FingercountError, ValueError):
    """An evaluation data directory is missing, empty or has no folder the model knows."""


NO_HAND = -1  # a prediction where the hand stage found no hand: wrong, whatever the label
NO_HAND_FOLDERS = ("no-hand", "none")  # photos with no hand: a count there is a false count


def metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Metrics over label indices; labels with no examples keep n=0 and are left out of macro-F1.
    A prediction of NO_HAND counts as wrong; it is left out of the confusion matrix and
    counted in "no_hand" (per class too)."""
    k = len(labels)
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    found = yp != NO_HAND
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (yt[found], yp[found]), 1)
    per_class: dict[str, dict] = {}
    f1s = []
    for i, lab in enumerate(labels):
        tp = int(conf[i, i])
        n = int((yt == i).sum())
        predicted = int(conf[:, i].sum())
        prec = tp / predicted if predicted else 0.0
        rec = tp / n if n else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[lab] = {"precision": round(prec, 6), "recall": round(rec, 6),
                          "f1": round(f1, 6), "n": n, "no_hand": int(((yt == i) & ~found).sum())}
        if n:
            f1s.append(f1)
    n = int(len(yt))
    return {
        "n": n,
        "accuracy": round(float((yt == yp).mean()) if n else 0.0, 6),
        "macro_f1": round(float(np.mean(f1s)) if f1s else 0.0, 6),
        "labels": list(labels),
        "per_class": per_class,
        "confusion": conf.tolist(),
        "no_hand": int((~found).sum()),
    }


def class_folder_items(root: Path | str, labels: Sequence[str]) -> tuple[list[tuple[Path, int]], list[str]]:
    """(image path, label index) for every image in a folder named by a known label;
    plus the names of folders that are not among the labels (ignored)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory")
    index = {lab: i for i, lab in enumerate(labels)}
    items: list[tuple[Path, int]] = []
    ignored: list[str] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if d.name not in index:
            ignored.append(d.name)
            continue
        items += [(f, index[d.name]) for f in sorted(d.iterdir())
                  if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]  # as bench --data and replay
    if not items:
        raise DataError(f"{root}: no images in folders named like the model's labels "
                        f"({', '.join(labels)})")
    return items, ignored


def evaluate_frames(classifier, frames: Iterable[tuple[np.ndarray, int]]) -> dict:
    """Score (RGB frame, label index) pairs through the one counting path (edge.counting:
    the hand stage, then the counter; a whole-frame model classifies the frame)."""
    from edge.counting import analyse

    yt, yp = [], []
    for frame, k in frames:
        probs = analyse(classifier, frame).probs
        yt.append(k)
        yp.append(NO_HAND if probs is None else int(np.argmax(probs)))
    return metrics(yt, yp, classifier.labels)


def false_counts(classifier, paths: Sequence[Path], min_confidence: float) -> dict:
    """Photos with no hand: how many got a count at min_confidence or more (a false count)."""
    from edge.counting import analyse

    n = false = unreadable = 0
    for path in paths:
        try:
            frame = read_image(str(path))
        except ValueError:
            unreadable += 1
            continue
        probs = analyse(classifier, frame).probs
        n += 1
        false += int(probs is not None and float(np.max(probs)) >= min_confidence)
    return {"n": n, "false_counts": false, "rate": round(false / n, 6) if n else 0.0,
            "min_confidence": min_confidence, "unreadable": unreadable}


def evaluate_dir(classifier, root: Path | str, limit: Optional[int] = None,
                 min_confidence: float = 0.6) -> dict:
    """Score a classifier on class folders; unreadable images are skipped with a note. A
    no-hand/ folder is scored apart: the share of its photos that got a count."""
    items, ignored = class_folder_items(root, classifier.labels)
    if limit:
        items = items[:limit]
    skipped: list[str] = []

    def frames():
        for path, k in items:
            try:
                yield read_image(str(path)), k
            except ValueError:
                skipped.append(str(path))

    res = evaluate_frames(classifier, frames())
    res["data"] = str(root)
    none_dirs = [Path(root) / d for d in ignored if d in NO_HAND_FOLDERS]
    res["ignored_folders"] = [d for d in ignored if d not in NO_HAND_FOLDERS]
    res["skipped_files"] = skipped
    if none_dirs:
        paths = [f for d in none_dirs for f in sorted(d.iterdir())
                 if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        res["no_hand_photos"] = false_counts(classifier, paths[:limit] if limit else paths,
                                             min_confidence)
    return res


def format_table(res: dict) -> str:
    """Human-readable summary: accuracy line and a per-class table."""
    lines = [f"accuracy {res['accuracy'] * 100:.2f} %  macro-F1 {res['macro_f1']:.4f}  n={res['n']}"
             + (f"  (no hand found in {res['no_hand']}, counted wrong)" if res.get("no_hand") else ""),
             f"{'label':>8} {'precision':>9} {'recall':>7} {'n':>5} {'no hand':>7}"]
    for lab, pc in res["per_class"].items():
        lines.append(f"{lab:>8} {pc['precision']:9.3f} {pc['recall']:7.3f} {pc['n']:5d} "
                     f"{pc.get('no_hand', 0):7d}")
    nh = res.get("no_hand_photos")
    if nh:
        lines.append(f"photos with no hand: a count on {nh['false_counts']} of {nh['n']} "
                     f"({nh['rate'] * 100:.1f} %, confidence >= {nh['min_confidence']})")
    return "\n".join(lines)
