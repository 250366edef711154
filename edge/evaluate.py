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


def metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Metrics over label indices; labels with no examples keep n=0 and are left out of macro-F1."""
    k = len(labels)
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (yt, yp), 1)
    per_class: dict[str, dict] = {}
    f1s = []
    for i, lab in enumerate(labels):
        tp = int(conf[i, i])
        n = int(conf[i].sum())
        predicted = int(conf[:, i].sum())
        prec = tp / predicted if predicted else 0.0
        rec = tp / n if n else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[lab] = {"precision": round(prec, 6), "recall": round(rec, 6),
                          "f1": round(f1, 6), "n": n}
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
    """Score (RGB frame, label index) pairs with a runtime Classifier (classify = preprocess + invoke)."""
    yt, yp = [], []
    for frame, k in frames:
        probs, _ = classifier.classify(frame)
        yt.append(k)
        yp.append(int(np.argmax(probs)))
    return metrics(yt, yp, classifier.labels)


def evaluate_dir(classifier, root: Path | str, limit: Optional[int] = None) -> dict:
    """Score a classifier on class folders; unreadable images are skipped with a note."""
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
    res["ignored_folders"] = ignored
    res["skipped_files"] = skipped
    return res


def format_table(res: dict) -> str:
    """Human-readable summary: accuracy line and a per-class table."""
    lines = [f"accuracy {res['accuracy'] * 100:.2f} %  macro-F1 {res['macro_f1']:.4f}  n={res['n']}",
             f"{'label':>8} {'precision':>9} {'recall':>7} {'n':>5}"]
    for lab, pc in res["per_class"].items():
        lines.append(f"{lab:>8} {pc['precision']:9.3f} {pc['recall']:7.3f} {pc['n']:5d}")
    return "\n".join(lines)
