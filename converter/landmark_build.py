"""`fingercount-convert build` of a landmark count head (recipe kind `landmarks`; no TensorFlow).

Photos -> the edge's hand stage -> 21 landmarks (cached) -> landmark features ->
class-balanced softmax regression (edge/softmax_regression.py) trained on the training
split and its landmark-space augmentation -> evaluated on the test split and on a
real-world dev set (a photo with no hand found counts as wrong) -> model package:
model.json (counter "landmarks", no .tflite of its own), head.npz, base_embeddings.npz
(the training features, float16, for on-device retraining), report.md.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from converter import package as pkgw
from converter.data import SPLIT_RULE, class_folder_files, split_of
from converter.errors import ConvertError
from converter.landmark_augment import LandmarkAugment, augment, canonical, curl, curled_variants
from converter.landmark_data import HandSpec, LandmarkCache, Landmarks
from converter.landmark_report import write_landmark_report
from converter.recipe import Recipe
from edge.evaluate import IMAGE_SUFFIXES, metrics
from edge.hands.counter import LANDMARK_COUNTER
from edge.hands.features import FEATURE_DIM, FEATURE_VERSION, GROUPS, columns, landmark_features
from edge.runtime.classifier import Head
from edge.softmax_regression import fit_softmax

NO_HAND = "no hand"  # the extra column of a confusion matrix: no hand was found
MIN_CONFIDENCE = 0.6  # a count at or above this on a photo with no hand is a false count


def split_files(root: Path, labels: list[str]) -> dict[str, list[tuple[Path, int, str]]]:
    out: dict[str, list[tuple[Path, int, str]]] = {"train": [], "val": [], "test": []}
    for path, k in class_folder_files(root, labels):
        out[split_of(path.name)].append((path, k, f"{labels[k]}/{path.relative_to(root / labels[k])}"))
    return out


def dev_files(root: Path, labels: list[str]) -> list[tuple[Path, int, str]]:
    """Class folders named like labels (index) and `no-hand` (-1); other folders ignored."""
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        k = labels.index(d.name) if d.name in labels else (-1 if d.name == "no-hand" else None)
        if k is None:
            continue
        out += [(f, k, f"{d.name}/{f.name}") for f in sorted(d.iterdir())
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    return out


def features_of(lm: Landmarks) -> np.ndarray:
    """(N, FEATURE_DIM); rows of photos with no hand are NaN."""
    X = np.full((len(lm.names), FEATURE_DIM), np.nan, np.float32)
    for i in np.flatnonzero(lm.found):
        X[i] = landmark_features(lm.landmarks[i], lm.handedness[i])
    return X


def training_set(lm: Landmarks, aug: LandmarkAugment, copies: int, open_label: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, synthetic): each found hand, `copies` augmented variants of it, and for each
    open hand (label open_label) aug.curl_copies variants with random fingers folded."""
    X, y, syn = [], [], []
    for i in np.flatnonzero(lm.found):
        c = canonical(lm.landmarks[i], lm.handedness[i])
        k = int(lm.y[i])
        X.append(landmark_features(c, "right"))
        y.append(k)
        syn.append(False)
        for _ in range(copies):
            X.append(landmark_features(augment(c, rng, aug), "right"))
            y.append(k)
            syn.append(True)
        if k == open_label:
            for cc, count in curled_variants(c, rng, aug.curl_copies):
                X.append(landmark_features(augment(cc, rng, aug), "right"))
                y.append(count)
                syn.append(True)
    return np.stack(X), np.array(y, np.int64), np.array(syn, bool)


def base_rows(y: np.ndarray, syn: np.ndarray, per_label: int, rng: np.random.Generator) -> np.ndarray:
    """Rows kept as base features for retraining: per label every real photo, then augmented
    ones drawn at random up to per_label in all (0: every row). A retrain fits on these and
    the user's samples, so fewer rows make it faster on the device."""
    if per_label <= 0:
        return np.arange(len(y))
    keep: list[int] = []
    for k in np.unique(y):
        real = np.flatnonzero((y == k) & ~syn)
        aug = np.flatnonzero((y == k) & syn)
        room = max(0, per_label - len(real))
        keep += real.tolist() + rng.choice(aug, size=min(room, len(aug)), replace=False).tolist()
    return np.sort(np.array(keep, dtype=np.int64))


def predict(head: Head, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label index or -1 where X is NaN (no hand), confidence)."""
    pred = np.full(len(X), -1, np.int64)
    conf = np.zeros(len(X), np.float32)
    ok = np.isfinite(X[:, 0]) if len(X) else np.zeros(0, bool)
    if ok.any():
        p = head.predict(X[ok])
        pred[ok] = p.argmax(axis=1)
        conf[ok] = p.max(axis=1)
    return pred, conf


def evaluate(head: Head, lm: Landmarks, X: np.ndarray, split: str, dataset: str) -> dict:
    """Metrics over the labelled photos (no hand found = wrong, its own confusion column),
    plus, for photos of no hand (label -1), how often a count was reported."""
    labels = list(head.labels)
    pred, conf = predict(head, X)
    has = lm.y >= 0
    cols = labels + [NO_HAND]
    yp = np.where(pred[has] < 0, len(labels), pred[has])
    m = metrics(lm.y[has].tolist(), yp.tolist(), cols)
    m["confusion"] = [row[:] for row in m["confusion"][:len(labels)]]
    m["per_class"].pop(NO_HAND, None)
    missed = [n for n, p, h in zip(lm.names, pred, has) if h and p < 0]
    m.update({"split": split, "dataset": dataset, "columns": cols, "no_hand_found": len(missed),
              "no_hand_found_files": missed, "accuracy_found": round(float(
                  (pred[has][pred[has] >= 0] == lm.y[has][pred[has] >= 0]).mean()) if (pred[has] >= 0).any()
                  else 0.0, 6)})
    none = ~has
    if none.any():
        false = [n for n, p, c, h in zip(lm.names, pred, conf, none) if h and p >= 0 and c >= MIN_CONFIDENCE]
        m["no_hand_photos"] = int(none.sum())
        m["hand_found_in_no_hand_photos"] = int((pred[none] >= 0).sum())
        m["false_counts"] = len(false)
        m["false_count_rate"] = round(len(false) / int(none.sum()), 6)
        m["false_count_files"] = false
    return m


def fist_check(head: Head, lm: Landmarks, open_label: int, seed: int) -> dict:
    """Open hands (label open_label) of the test split with every subset of fingers folded,
    at the middle of the fold ranges and at random angles: how often the head reads 5 - k."""
    rng = np.random.default_rng(seed)
    idx = [i for i in np.flatnonzero(lm.found) if lm.y[i] == open_label]
    per_k: dict[int, list[bool]] = {k: [] for k in range(6)}
    fists = []
    for i in idx:
        c = canonical(lm.landmarks[i], lm.handedness[i])
        for mask in range(32):
            fingers = [f for f in range(5) if mask >> f & 1]
            for r in (None, rng):
                x = landmark_features(curl(c, fingers, r), "right")
                ok = head.labels[int(np.argmax(head.predict(x[None])[0]))] == str(5 - len(fingers))
                per_k[len(fingers)].append(ok)
                if len(fingers) == 5:
                    fists.append(ok)
    return {"hands": len(idx), "fist_as_0": round(float(np.mean(fists)), 6) if fists else None,
            "curled_k_correct": {str(k): round(float(np.mean(v)), 6) for k, v in per_k.items() if v},
            "variants": sum(len(v) for v in per_k.values())}


def fit_head(X: np.ndarray, y: np.ndarray, labels: list[str], l2s: list[float], Xv: np.ndarray,
             yv: np.ndarray, max_steps: int, cols: Optional[np.ndarray] = None) -> tuple[Head, float, dict]:
    """The head of the L2 that scores best on the validation photos (ties: the larger L2),
    trained on the columns `cols` only (the others get weight 0)."""
    best: Optional[tuple[float, float, Head]] = None
    scores = {}
    ok = np.isfinite(Xv[:, 0])
    cols = np.ones(X.shape[1], bool) if cols is None else cols
    for l2 in sorted(l2s, reverse=True):
        fit = fit_softmax(X[:, cols], y, len(labels), l2=l2, max_steps=max_steps)
        W = np.zeros((X.shape[1], len(labels)), np.float32)
        W[cols] = fit.W
        head = Head(W, fit.b, tuple(labels))
        acc = float((head.predict(Xv[ok]).argmax(axis=1) == yv[ok]).mean()) if ok.any() else 0.0
        scores[str(l2)] = round(acc, 6)
        if best is None or acc > best[0]:
            best = (acc, l2, head)
    assert best is not None
    return best[2], best[1], scores


def build_landmarks(r: Recipe, data: str, out: Path, command: str, per_class: Optional[int] = None,
                    toy: Optional[str] = None, replace: bool = False,
                    cache_dir: Optional[Path] = None) -> tuple[Path, dict]:
    t0 = time.time()
    labels = list(r["labels"])
    root = Path(data)
    seed = int(r.get("seed", 0))
    rng = np.random.default_rng(seed)
    h = r.get("hands") or {}
    spec = HandSpec(Path(h.get("models_dir") or out), h.get("palm", "palm-detection-lite"),
                    h.get("landmark", "hand-landmark-full"), h.get("precision", "fp32"))
    try:
        cache = LandmarkCache(spec, cache_dir)
    except Exception as e:  # a missing hand package: one line, before any work
        raise ConvertError(f"the hand stage ({spec.palm}, {spec.landmark} {spec.precision} in "
                           f"{spec.models_dir}) cannot be loaded: {e}") from e
    files = split_files(root, labels)
    per_class = per_class or r.get("per_class")
    if per_class:
        files = {s: [f for k in range(len(labels)) for f in [x for x in v if x[1] == k][:per_class]]
                 for s, v in files.items()}
    print(f"hand landmarks of {sum(len(v) for v in files.values())} photos (cache {cache.path})",
          file=sys.stderr, flush=True)
    lms = {s: cache.extract(v) for s, v in files.items()}
    dev_root = r.get("dev.data")
    dev: Optional[Landmarks] = None
    if dev_root:
        dev_path = Path(dev_root) if Path(dev_root).is_absolute() else root.parent / dev_root
        if not dev_path.is_dir():
            raise ConvertError(f"dev.data {dev_path}: no such directory")
        dfiles = dev_files(dev_path, labels)
        if per_class:
            dfiles = [f for k in range(-1, len(labels)) for f in [x for x in dfiles if x[1] == k][:per_class]]
        dev = cache.extract(dfiles)
    print(f"landmarks: {cache.hits} from the cache, {cache.computed} computed", file=sys.stderr, flush=True)

    if not lms["train"].found.any():
        raise ConvertError(f"{root}: the hand stage found no hand in any of the "
                           f"{len(lms['train'].names)} training photos: nothing to train on")
    aug = LandmarkAugment.from_dict(r.get("augment"))
    t = r.get("train") or {}
    open_label = labels.index("5")
    X, y, syn = training_set(lms["train"], aug, int(t.get("copies", 3)), open_label, rng)
    Xv = features_of(lms["val"])
    l2s = [float(v) for v in (t.get("l2") or [1e-3])]
    groups = list(t.get("groups") or GROUPS)
    head, l2, l2_scores = fit_head(X, y, labels, l2s, Xv, lms["val"].y, int(t.get("max_steps", 300)),
                                   columns(groups))
    X_test, X_dev = features_of(lms["test"]), (features_of(dev) if dev is not None else None)
    m = {"val": evaluate(head, lms["val"], Xv, "validation", str(root)),
         "test": evaluate(head, lms["test"], X_test, "test", str(root))}
    if dev is not None and X_dev is not None:
        m["dev"] = evaluate(head, dev, X_dev, "all (real-world dev set)", str(dev_path))
    fists = fist_check(head, lms["test"], open_label, seed)
    found = {s: int(v.found.sum()) for s, v in lms.items()}
    not_found = [n for v in lms.values() for n, f in zip(v.names, v.found) if not f]

    out.mkdir(parents=True, exist_ok=True)
    with pkgw.staging(out, r.name) as stage:
        head_entry = pkgw.write_npz(stage, "head.npz", W=head.W, b=head.b, labels=np.array(labels),
                                    info_json=np.array(json.dumps({"origin": "shipped", "features": FEATURE_VERSION})))
        keep = base_rows(y, syn, int(t.get("base_per_label", 0)), rng)
        base = pkgw.write_npz(stage, "base_embeddings.npz", labels=np.array([labels[k] for k in y[keep]]),
                              embeddings=X[keep].astype(np.float16), synthetic=syn[keep])
        meta = {
            "format": 1, "name": r.name, "version": str(r["version"]) + ("+toy" if toy else ""),
            "task": r["task"], "counter": LANDMARK_COUNTER, "labels": labels,
            "input": {"landmarks": 21, "dims": 3, "features": FEATURE_VERSION, "feature_dim": FEATURE_DIM},
            "variants": {},
            "hands": {k: v for k, v in spec.identity().items() if k != "sha256"},
            "retrainable": {"embedding_dim": FEATURE_DIM, "features": FEATURE_VERSION,
                            "groups": list(t.get("retrain_groups") or groups),
                            "head": head_entry, "base_embeddings": base},
            "metrics": m, "fists": fists,
            "training": {"l2": l2, "groups": groups, "base_rows": int(len(keep)), "val_accuracy_by_l2": l2_scores, "examples": int(len(y)),
                         "real": int((~syn).sum()), "synthetic": int(syn.sum()),
                         "per_label": {lab: int((y == k).sum()) for k, lab in enumerate(labels)},
                         "augment": aug.__dict__, "copies": int(t.get("copies", 3))},
            "provenance": {"dataset": str(root), "split_rule": SPLIT_RULE, "recipe": str(r.path),
                           "settings": r.raw, "seed": seed, "git_commit": pkgw.git_commit(),
                           "command": command,
                           "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           "hands_found": found, "no_hand_found_count": len(not_found),
                           "no_hand_found_files": not_found, "landmark_cache": str(cache.path)}}
        if toy:
            meta["provenance"]["toy"] = toy
        meta["bars"] = bars(meta)
        meta["provenance"]["build_seconds"] = round(time.time() - t0, 1)
        write_landmark_report(stage, meta, why=str(r.get("why") or ""))
        pkgw.write_json(stage / "model.json", meta)
        for k, mm in m.items():
            extra = f", false counts {mm['false_counts']}/{mm['no_hand_photos']}" if "false_counts" in mm else ""
            print(f"{r.name} {k}: accuracy {mm['accuracy'] * 100:.2f} % (n={mm['n']}, no hand found "
                  f"{mm['no_hand_found']}{extra})", flush=True)
        print(f"{r.name} fists read 0: {fists['fist_as_0']} ({fists['hands']} open hands curled)", flush=True)
        for bar in meta["bars"]:
            print(f"  bar {bar['name']}: {bar['value']} (required {bar['required']}) "
                  f"{'ok' if bar['met'] else 'NOT MET'}", flush=True)
        final = pkgw.publish(stage, out, r.name, replace=replace)
    print(f"wrote {final} in {time.time() - t0:.0f} s", flush=True)
    return final, meta


def _bar(name: str, value: float, required: str, met: bool) -> dict:
    return {"name": name, "value": round(float(value), 6), "required": required, "met": bool(met)}


def bars(meta: dict) -> list[dict]:
    m = meta["metrics"]
    out = [_bar("test accuracy (no hand = wrong)", m["test"]["accuracy"], ">= 0.99", m["test"]["accuracy"] >= 0.99)]
    if "dev" in m:
        d = m["dev"]
        out.append(_bar("dev accuracy (no hand = wrong)", d["accuracy"], ">= 0.97", d["accuracy"] >= 0.97))
        if "false_count_rate" in d:
            out.append(_bar("dev no-hand false counts", d["false_count_rate"], "<= 0.01",
                            d["false_count_rate"] <= 0.01))
    f = meta["fists"]["fist_as_0"]
    if f is not None:
        out.append(_bar("synthetic fists read 0", f, ">= 0.95", f >= 0.95))
    return out
