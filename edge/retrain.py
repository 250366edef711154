"""On-device head retraining: embeddings -> softmax head -> validation gate -> swap / rollback.

Data: the model's base embeddings (models/<name>/base_embeddings.npz, the training set
it shipped with) plus the user's samples (embedded by this precision's backbone, cached
in the sample index). User samples are split per label into train and held-out parts,
deterministically (ordered by content sha256), so the gate compares the current and
the new head on samples neither was trained on.

Heads live in <state_dir>/heads/<model>/: head.npz (current) and head.previous.npz
(what `rollback` restores). Without a user head the shipped head is "previous", so a
rollback of the first retrain returns to the shipped fused model.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.config import Config
from edge.errors import FingercountError, ModelError, RetrainError
from edge.runtime.classifier import (
    HEAD_FILE,
    PREVIOUS_HEAD_FILE,
    Backbone,
    Head,
    current_head_path,
    head_dir,
)
from edge.runtime.package import ModelPackage
from edge.samples import Sample, SampleStore
from edge.softmax_regression import fit_softmax

log = logging.getLogger(__name__)

# progress(phase, fraction 0..1, detail)
Progress = Callable[[str, float, dict], None]
# Base embeddings vs. user samples inside one label: the user's own camera is what the
# head must get right, so their samples carry this share of the label's weight.
USER_SHARE = 0.5


@dataclass
class RetrainResult:
    model: str
    precision: str
    swapped: bool
    forced: bool
    reason: str
    labels: list[str]
    new_labels: list[str]
    samples_per_label: dict[str, int]
    train_per_label: dict[str, int]
    holdout_per_label: dict[str, int]
    base_samples: int
    accuracy_before: Optional[float]
    accuracy_after: Optional[float]
    embeddings_computed: int
    steps: int
    stopped: str
    duration_s: float
    timing_s: dict[str, float] = field(default_factory=dict)
    head_path: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)


def _info(head: Head) -> dict:
    raw = (head.info or {}).get("info_json")
    try:
        return json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}


def shipped_head(package: ModelPackage) -> Head:
    return Head.load(package.file_path("head"))


def current_head(cfg: Config, package: ModelPackage) -> tuple[Head, bool]:
    """(head in effect, is_user_head): the user's head when present, else the shipped one."""
    p = current_head_path(cfg.state_dir, package.name)
    if p is not None:
        try:
            return Head.load(p), True
        except ModelError as e:
            log.warning("ignoring unreadable user head: %s", e)
    return shipped_head(package), False


def load_base_embeddings(package: ModelPackage, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels str (N,), embeddings float32 (N, D)) made by this precision's backbone."""
    path = package.file_path("base_embeddings")
    try:
        with np.load(path, allow_pickle=False) as z:
            key = f"embeddings_{precision}"
            if key not in z.files:
                key = next((k for k in z.files if k.startswith("embeddings")), key)
            return np.asarray([str(x) for x in z["labels"]]), np.asarray(z[key], np.float32)
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(f"{path}: not a valid base_embeddings file ({e})") from e


def holdout_split(samples: list[Sample], fraction: float) -> tuple[list[int], list[int]]:
    """Stratified, deterministic: per label, the round(n * fraction) samples with the
    smallest content sha256 are held out (at least one when n >= 2, never all)."""
    by_label: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_label.setdefault(s.label, []).append(i)
    train: list[int] = []
    hold: list[int] = []
    for idx in by_label.values():
        idx.sort(key=lambda i: samples[i].sha256)
        n = len(idx)
        k = 0 if fraction <= 0 or n < 2 else min(n - 1, max(1, int(round(n * fraction))))
        hold += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(hold)


def head_accuracy(head: Head, X: np.ndarray, truth: list[str]) -> Optional[float]:
    if len(truth) == 0:
        return None
    pred = np.argmax(head.predict(X), axis=1)
    return float(np.mean([head.labels[p] == t for p, t in zip(pred, truth)]))


def _weights(labels: np.ndarray, is_user: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class-balanced; inside a class with both, user samples carry USER_SHARE of its weight."""
    w = np.zeros(len(labels))
    for c in classes:
        m = labels == c
        mu, mb = m & is_user, m & ~is_user
        if mu.any() and mb.any():
            w[mu] = USER_SHARE / mu.sum()
            w[mb] = (1 - USER_SHARE) / mb.sum()
        elif m.any():
            w[m] = 1.0 / m.sum()
    return w


def retrain(cfg: Config, package: ModelPackage, store: SampleStore, precision: Optional[str] = None,
            force: bool = False, progress: Optional[Progress] = None,
            backbone: Optional[Backbone] = None) -> RetrainResult:
    """Train a new head; swap it in (write head.npz) when it passes the gate or is forced."""
    t0 = time.monotonic()
    precision = precision or cfg.model.precision
    rc = cfg.retrain
    deadline = t0 + rc.max_seconds
    if not package.retrainable:
        raise RetrainError(f"{package.name} cannot be retrained on the device (no backbone/head); "
                           "use a retrainable model such as fingers-mobilenet")
    report = progress or (lambda phase, frac, detail: None)
    timing: dict[str, float] = {}

    # 1. embeddings of the user's samples (cached per backbone sha256)
    report("embedding", 0.0, {})
    bb = backbone or Backbone(package, precision, cfg.model.threads, roi=cfg.camera.roi)
    try:
        computed = store.ensure_embeddings(
            bb, deadline, lambda i, n: report("embedding", i / n, {"done": i, "of": n}))
    except FingercountError as e:
        raise RetrainError(str(e)) from e
    samples, Xu = store.embeddings(bb.sha256)
    timing["embedding"] = time.monotonic() - t0
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.label] = counts.get(s.label, 0) + 1
    keep = {lab for lab, n in counts.items() if n >= rc.min_samples_per_label}
    if not keep:
        raise RetrainError("no samples to train on: capture some first (button, MQTT capture or "
                           "`fingercount capture --label L`)")
    sel = [i for i, s in enumerate(samples) if s.label in keep]
    samples = [samples[i] for i in sel]
    Xu = Xu[sel]

    # 2. data: base embeddings + user train split
    base_labels, Xb = load_base_embeddings(package, precision)
    if Xb.shape[1] != Xu.shape[1]:
        raise RetrainError(f"base embeddings have {Xb.shape[1]} dimensions, the backbone makes "
                           f"{Xu.shape[1]}: the model package is inconsistent")
    train_i, hold_i = holdout_split(samples, rc.holdout)
    cur, cur_is_user = current_head(cfg, package)
    classes = list(cur.labels)
    present = set(base_labels) | {samples[i].label for i in train_i}
    classes = [c for c in classes if c in present]
    new_labels = sorted(present - set(classes))
    classes += new_labels
    if len(classes) < 2:
        raise RetrainError("need samples of at least two labels")
    cls_idx = {c: j for j, c in enumerate(classes)}
    y_lab = np.concatenate([base_labels, np.asarray([samples[i].label for i in train_i], dtype=str)])
    X = np.concatenate([Xb, Xu[train_i]]) if train_i else Xb
    is_user = np.concatenate([np.zeros(len(Xb), bool), np.ones(len(train_i), bool)])
    y = np.asarray([cls_idx[c] for c in y_lab])
    w = _weights(y_lab, is_user, classes)

    # 3. fit, warm-started from the current head's columns for labels it already has
    W0 = np.zeros((X.shape[1], len(classes)), np.float32)
    b0 = np.zeros(len(classes), np.float32)
    for j, c in enumerate(classes):
        if c in cur.labels and cur.W.shape[0] == X.shape[1]:
            W0[:, j] = cur.W[:, cur.labels.index(c)]
            b0[j] = cur.b[cur.labels.index(c)]
    t_fit = time.monotonic()
    report("training", 0.0, {"samples": int(len(X)), "labels": classes})
    fit = fit_softmax(X, y, len(classes), rc.l2, sample_weight=w, W0=W0, b0=b0, max_steps=rc.epochs,
                      max_seconds=max(0.1, deadline - time.monotonic()),
                      progress=lambda step, loss: report("training", step / rc.epochs,
                                                         {"step": step, "loss": round(loss, 5)}))
    timing["training"] = time.monotonic() - t_fit
    new = Head(fit.W, fit.b, tuple(classes))

    # 4. gate on held-out user samples
    Xh = Xu[hold_i] if hold_i else np.zeros((0, X.shape[1]), np.float32)
    truth = [samples[i].label for i in hold_i]
    before = head_accuracy(cur, Xh, truth)
    after = head_accuracy(new, Xh, truth)
    report("evaluating", 1.0, {"accuracy_before": before, "accuracy_after": after})
    if before is None:
        swap, reason = True, "no held-out samples (capture at least 2 per label): gate skipped"
    elif after >= before:
        swap, reason = True, f"held-out accuracy {before:.3f} -> {after:.3f}"
    elif force:
        swap, reason = True, f"forced although held-out accuracy drops {before:.3f} -> {after:.3f}"
    else:
        swap, reason = False, (f"not swapped: the new head scores {after:.3f} on held-out samples, "
                               f"the current one {before:.3f} (use force to swap anyway)")
    per = {lab: counts[lab] for lab in sorted(keep)}
    result = RetrainResult(
        model=package.name, precision=precision, swapped=swap, forced=force, reason=reason,
        labels=classes, new_labels=new_labels, samples_per_label=per,
        train_per_label=_count([samples[i].label for i in train_i]),
        holdout_per_label=_count(truth), base_samples=int(len(Xb)), accuracy_before=before,
        accuracy_after=after, embeddings_computed=computed, steps=fit.steps, stopped=fit.stopped,
        duration_s=0.0, timing_s=timing)
    if swap:
        result.head_path = str(install_head(cfg, package, new, cur, cur_is_user, {
            "trained_at": datetime.now(timezone.utc).isoformat(), "precision": precision,
            "backbone_sha256": bb.sha256, "samples_per_label": per, "accuracy_before": before,
            "accuracy_after": after, "forced": force}))
    result.duration_s = round(time.monotonic() - t0, 3)
    return result


def _count(labels: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for lab in labels:
        out[lab] = out.get(lab, 0) + 1
    return dict(sorted(out.items()))


def install_head(cfg: Config, package: ModelPackage, new: Head, cur: Head, cur_is_user: bool,
                 info: dict) -> Path:
    """Keep the current head as previous, then atomically replace head.npz."""
    d = head_dir(cfg.state_dir, package.name)
    prev_info = _info(cur) if cur_is_user else {"origin": "shipped"}
    try:
        cur.save(d / PREVIOUS_HEAD_FILE, info_json=json.dumps(prev_info))
        new.save(d / HEAD_FILE, info_json=json.dumps({"origin": "retrained", **info}))
    except OSError as e:
        raise RetrainError(f"cannot write the new head to {d}: {e.strerror or e}") from e
    return d / HEAD_FILE


def rollback(cfg: Config, package: ModelPackage) -> dict:
    """Swap head.npz and head.previous.npz (a second rollback re-applies the newer head).

    If the previous head is the shipped one, head.npz is removed so the fused model runs again.
    """
    d = head_dir(cfg.state_dir, package.name)
    prev_path, cur_path = d / PREVIOUS_HEAD_FILE, d / HEAD_FILE
    if not prev_path.is_file():
        raise RetrainError(f"nothing to roll back to for {package.name} (no {prev_path})")
    prev = Head.load(prev_path)
    cur, cur_is_user = current_head(cfg, package)
    try:
        cur.save(prev_path, info_json=json.dumps(_info(cur) if cur_is_user else {"origin": "shipped"}))
        if _info(prev).get("origin") == "shipped":
            cur_path.unlink(missing_ok=True)
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            prev.save(cur_path, info_json=json.dumps(_info(prev)))
    except OSError as e:
        raise RetrainError(f"rollback failed writing {d}: {e.strerror or e}") from e
    now = "shipped" if _info(prev).get("origin") == "shipped" else "retrained"
    return {"model": package.name, "head": now, "labels": list(prev.labels),
            "trained_at": _info(prev).get("trained_at")}
