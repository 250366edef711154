"""The real-world dev set on a finger-count model card: photos from another camera and room
(the EPSRC finger-counting frames: classes 1-5 and no-hand scenes) beside the test split,
which is a share of the same studio photos the model trained on.

A no-hand photo is a *false count* when the model names a count there at a confidence at
or above the daemon's smoothing.min_confidence: on a device that would be published."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from converter.data import UNREADABLE
from converter.errors import ConvertError
from converter.quantize import PRECISIONS
from edge.camera.replay import list_images
from edge.config import SmoothingSection
from edge.counting import analyse
from edge.evaluate import evaluate_frames
from edge.runtime.classifier import Classifier, label_count
from edge.runtime.package import ModelPackage, load_package
from edge.runtime.preprocess import read_image

REPO = Path(__file__).resolve().parents[1]
# beside the checkout, as the hand data is (../shared/data/…)
DEFAULT_DIR = REPO.parent / "shared" / "data" / "epsrc-finger-counting"
NO_HAND = "no-hand"
MIN_CONFIDENCE = SmoothingSection().min_confidence


@dataclass
class RealWorld:
    root: Path
    frames: list[np.ndarray] = field(default_factory=list)
    y: list[int] = field(default_factory=list)          # label index per frame (labels present)
    no_hand: list[np.ndarray] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    per_folder: Optional[int] = None                    # a toy build's subset


def resolve_dir(option: Optional[str]) -> Optional[Path]:
    """--real-world / the recipe's real_world: a folder, 'none', or unset (the EPSRC folder
    beside the checkout when it is there)."""
    if option is not None and str(option).lower() == "none":
        return None
    if option:
        return Path(option)
    return DEFAULT_DIR if DEFAULT_DIR.is_dir() else None


def load(root: Path, labels: list[str], per_folder: Optional[int] = None) -> RealWorld:
    """The model's labels' folders and no-hand/ under root (others, e.g. '0' absent, ignored)."""
    rw = RealWorld(root, per_folder=per_folder)
    for k, lab in enumerate(labels):
        for path in list_images(root / lab)[:per_folder or None] if (root / lab).is_dir() else []:
            frame = _read(path, rw)
            if frame is not None:
                rw.frames.append(frame)
                rw.y.append(k)
    if (root / NO_HAND).is_dir():
        for path in list_images(root / NO_HAND)[:per_folder or None]:
            frame = _read(path, rw)
            if frame is not None:
                rw.no_hand.append(frame)
    return rw


def _read(path: Path, rw: RealWorld) -> Optional[np.ndarray]:
    try:
        return read_image(str(path))
    except ValueError:
        print(f"note: {path}: {UNREADABLE}", file=sys.stderr, flush=True)
        rw.skipped.append(str(path))
        return None


def evaluate(clf, rw: RealWorld, min_confidence: float = MIN_CONFIDENCE) -> dict:
    """Accuracy on the hand photos, and the false-count rate on the no-hand photos, through
    the edge's counting path (edge.counting.analyse: behind the hand stage for a HandCounter,
    where a photo with no hand found is wrong, and has no count on a no-hand photo)."""
    labels = list(clf.labels)
    m = evaluate_frames(clf, zip(rw.frames, rw.y))
    present = sorted({labels[k] for k in rw.y}, key=labels.index)
    false = 0
    for f in rw.no_hand:
        probs = analyse(clf, f).probs
        if probs is None:
            continue
        k = int(np.argmax(probs))
        if label_count(labels[k]) is not None and float(probs[k]) >= min_confidence:
            false += 1
    n_none = len(rw.no_hand)
    return {"n": m["n"], "accuracy": m["accuracy"], "labels_present": present,
            "per_class": {lab: m["per_class"][lab] for lab in present},
            "confusion": m["confusion"], "hand_not_found": m["no_hand"],
            "no_hand": {"n": n_none, "false_counts": false,
                        "rate": round(false / n_none, 6) if n_none else None,
                        "min_confidence": min_confidence}}


def card_section(meta: dict) -> list[str]:
    """The model card's lines: what the test split is, then the real-world figures."""
    rw = meta.get("real_world")
    prov = meta["provenance"]
    out = ["## What the test split is", "",
           f"The accuracy above is on the test split of `{prov['dataset']}`: "
           f"{'a few images (toy build)' if prov.get('toy') else '15 %'} of the same photos the "
           "model trained on, set aside by a hash of the file name (70 % train, 15 % validation, "
           "15 % test). They share the studio: backgrounds, lighting, framing, people. So the "
           "figure shows that training worked, not how the model does with another camera, room "
           "or hand. The real-world dev set below does.", ""]
    if not rw or not rw.get("metrics"):
        why = (rw or {}).get("why", "no real-world folder was given and the default is not there")
        return out + ["## Real-world dev set", "", f"**Not evaluated**: {why}.", ""]
    sub = f" (toy build: the first {rw['per_folder']} photos of each folder)" if rw.get("per_folder") else ""
    first = next(iter(rw["metrics"].values()))
    out += [f"## Real-world dev set (`{rw['dataset']}`){sub}", "",
            f"Photos from another camera and room: {first['n']} hand photos of "
            f"{', '.join(first['labels_present'])} fingers, and {first['no_hand']['n']} scenes "
            "without a hand. A no-hand photo counts as a **false count** when the model names a "
            f"count there with confidence >= {first['no_hand']['min_confidence']} (the daemon's "
            "smoothing.min_confidence): a device would publish it.", "",
            "| precision | accuracy (hands) | n | no hand found (counted wrong) | false counts (no hand) | n |",
            "|---|---:|---:|---:|---:|---:|"]
    for prec, m in rw["metrics"].items():
        nh = m["no_hand"]
        rate = "-" if nh["rate"] is None else f"{nh['rate'] * 100:.1f} %"
        missed = m.get("hand_not_found")
        out.append(f"| {prec} | {m['accuracy'] * 100:.2f} % | {m['n']} | "
                   f"{'-' if missed is None else missed} | {rate} | {nh['n']} |")
    int8 = rw["metrics"].get("int8") or first
    out += ["", "Recall per class (int8): " + ", ".join(
        f"{lab}: {pc['recall']:.3f} (n={pc['n']})" for lab, pc in int8["per_class"].items()), ""]
    return out


def real_world_metrics(pkg_dir: Path, rw_dir: Optional[Path], per_class: Optional[int],
                       labels: list[str], counter: Optional[Callable[[ModelPackage, str], Any]] = None
                       ) -> dict:
    """model.json's real_world: each precision on the real-world dev set, or why it was not.
    counter(pkg, precision): what scores it (a crop model: a HandCounter); a Classifier if None."""
    if rw_dir is None:
        return {"why": "no real-world folder: --real-world DIR, or the recipe's real_world "
                       f"(default {DEFAULT_DIR}, not present here)"}
    if not rw_dir.is_dir():
        raise ConvertError(f"--real-world {rw_dir}: no such folder")
    rw = load(rw_dir, labels, per_folder=per_class)
    if not rw.frames:
        raise ConvertError(f"--real-world {rw_dir}: no images in folders named like the labels "
                           f"({', '.join(labels)})")
    pkg = load_package(pkg_dir)
    res = {p: evaluate(counter(pkg, p) if counter else Classifier(pkg, p, threads=2), rw)
           for p in PRECISIONS}
    return {"dataset": _shown(rw_dir), "per_folder": per_class, "skipped_files": rw.skipped,
            "metrics": res}


def _shown(p: Path) -> str:
    """A data path as the card shows it: relative to the checkout's parent when beside it."""
    try:
        return "../" + Path(p).resolve().relative_to(REPO.parent).as_posix()
    except ValueError:
        return str(p)
