"""On-device head retraining: embeddings -> softmax head -> validation gate -> swap / rollback.

Data: the model's base embeddings (models/<name>/base_embeddings.npz, the training set
it shipped with) plus the user's samples (embedded by this precision's backbone, cached
in the sample index). The gate compares the current and the new head on user samples
neither was trained on: a held-out part per label (deterministic, by content sha256) when
there are enough; with fewer than GATE_CV_BELOW held out per label (a handful of captures,
where one sample swings the score by 20-50 %), cross-validation instead: the final head
trains on every sample and each sample is scored by a head fitted without its fold. A user
head records the samples it trained on, so the next gate leaves those out of "before".

The new head is installed, and rolled back, by edge/heads.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional

import numpy as np

from edge.config import Config
from edge.errors import FingercountError, ModelError, RetrainError
from edge.heads import current_head, finish_head_swap, head_identity, head_info, install_head
from edge.runtime.classifier import (
    Backbone,
    Head,
)
from edge.runtime.package import ModelPackage
from edge.sample_features import BackboneFeatures, SampleFeatures, sample_features
from edge.samples import Sample, SampleStore
from edge.softmax_regression import FitResult, fit_softmax

log = logging.getLogger(__name__)

# progress(phase, fraction 0..1, detail)
Progress = Callable[[str, float, dict], None]
# Base embeddings vs. user samples inside one label: the user's own camera is what the
# head must get right, so their samples carry this share of the label's weight.
USER_SHARE = 0.5
# Fewer held-out samples than this in some label -> the gate cross-validates (CV_FOLDS folds).
GATE_CV_BELOW = 3
CV_FOLDS = 5


class RetrainCancelled(RetrainError):
    """Stopped from outside (the daemon is stopping): nothing was installed."""


def _check(cancel: Optional[threading.Event]) -> None:
    if cancel is not None and cancel.is_set():
        raise RetrainCancelled("retrain cancelled: nothing was installed (the embeddings made so far "
                               "are kept)")


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
    holdout_per_label: dict[str, int]  # the samples the gate scored, per label
    base_samples: int
    accuracy_before: Optional[float]
    accuracy_after: Optional[float]
    embeddings_computed: int
    steps: int
    stopped: str
    duration_s: float
    timing_s: dict[str, float] = field(default_factory=dict)
    head_path: Optional[str] = None
    gate: str = "held-out samples"  # or "cross-validation, K folds"
    skipped_no_hand: int = 0  # landmark counters: samples where the hand stage found no hand
    warning: Optional[str] = None  # e.g. samples of only some labels

    def to_dict(self) -> dict:
        return asdict(self)


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


def cv_folds(samples: list[Sample], idx: list[int], k: int) -> list[list[int]]:
    """Stratified, deterministic folds of samples[idx]: per label, by content sha256, round robin."""
    by_label: dict[str, list[int]] = {}
    for i in idx:
        by_label.setdefault(samples[i].label, []).append(i)
    folds: list[list[int]] = [[] for _ in range(k)]
    for ids in by_label.values():
        ids.sort(key=lambda i: samples[i].sha256)
        for r, i in enumerate(ids):
            folds[r % k].append(i)
    return [sorted(f) for f in folds if f]


def head_accuracy(head: Head, X: np.ndarray, truth: list[str]) -> Optional[float]:
    if len(truth) == 0:
        return None
    pred = np.argmax(head.predict(X), axis=1)
    return float(np.mean([head.labels[p] == t for p, t in zip(pred, truth)]))


def _weights(labels: np.ndarray, is_user: np.ndarray, classes: list[str],
             share: float = USER_SHARE) -> np.ndarray:
    """Class-balanced; inside a class with both, user samples carry `share` of its weight."""
    w = np.zeros(len(labels))
    for c in classes:
        m = labels == c
        mu, mb = m & is_user, m & ~is_user
        if mu.any() and mb.any():
            w[mu] = share / mu.sum()
            w[mb] = (1 - share) / mb.sum()
        elif m.any():
            w[m] = 1.0 / m.sum()
    return w


def fit_head(Xb: np.ndarray, base_labels: np.ndarray, Xu: np.ndarray, user_labels: Sequence[str],
             classes: list[str], W0: np.ndarray, b0: np.ndarray, l2: float, max_steps: int,
             share: float = USER_SHARE, max_seconds: Optional[float] = None,
             progress: Optional[Callable[[int, float], None]] = None) -> FitResult:
    """A softmax head on base embeddings plus the user's, warm-started from W0/b0
    (class-balanced; inside a label the user's samples carry `share` of its weight)."""
    y_lab = np.concatenate([base_labels, np.asarray(user_labels, dtype=str)])
    X = np.concatenate([Xb, Xu]) if len(Xu) else Xb
    is_user = np.concatenate([np.zeros(len(Xb), bool), np.ones(len(Xu), bool)])
    col = {c: j for j, c in enumerate(classes)}
    return fit_softmax(X, np.asarray([col[c] for c in y_lab]), len(classes), l2,
                       sample_weight=_weights(y_lab, is_user, classes, share), W0=W0, b0=b0,
                       max_steps=max_steps, max_seconds=max_seconds, progress=progress)


def retrain(cfg: Config, package: ModelPackage, store: SampleStore, precision: Optional[str] = None,
            force: bool = False, progress: Optional[Progress] = None,
            backbone: Optional[Backbone] = None,
            cancel: Optional[threading.Event] = None,
            features: Optional[SampleFeatures] = None) -> RetrainResult:
    """Train a new head; swap it in (write head.npz) when it passes the gate or is forced.
    cancel, once set, stops it within an embedding or an optimisation step (RetrainCancelled).
    features: where the samples' features come from (default: the package's backbone, or the
    hand stage and landmark features for a landmark counter; backbone: that backbone)."""
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
    fx = features or (BackboneFeatures(backbone) if backbone is not None
                      else sample_features(cfg, package, precision))

    def embedded(i: int, n: int) -> None:
        _check(cancel)  # after each sample: each one embedded is kept
        report("embedding", i / n, {"done": i, "of": n})

    try:
        _check(cancel)
        computed = fx.prepare(store, deadline, embedded)
    except RetrainCancelled:
        raise
    except FingercountError as e:
        raise RetrainError(str(e)) from e
    samples, Xu, no_hand = fx.load(store)
    timing["embedding"] = time.monotonic() - t0
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.label] = counts.get(s.label, 0) + 1
    keep = {lab for lab, n in counts.items() if n >= rc.min_samples_per_label}
    if not keep:
        raise RetrainError("no samples to train on: capture some first (button, MQTT capture or "
                           "`fingercount capture --label L`)"
                           + (f"; the hand stage found no hand in {no_hand}" if no_hand else ""))
    sel = [i for i, s in enumerate(samples) if s.label in keep]
    samples = [samples[i] for i in sel]
    Xu = Xu[sel]

    # 2. data: base embeddings + user train split
    base_labels, Xb = load_base_embeddings(package, precision)
    mask = fx.mask()
    if mask is not None and len(mask) == Xb.shape[1] == Xu.shape[1]:
        # the columns the shipped head learns from; the others stay at weight 0
        Xb, Xu = Xb * mask, Xu * mask
    if Xb.shape[1] != Xu.shape[1]:
        raise RetrainError(f"base embeddings have {Xb.shape[1]} dimensions, the backbone makes "
                           f"{Xu.shape[1]}: the model package is inconsistent")
    train_i, hold_i = holdout_split(samples, rc.holdout)
    finish_head_swap(cfg, package)
    cur_identity = head_identity(cfg.state_dir, package.name)
    cur, cur_is_user = current_head(cfg, package)
    seen = set(head_info(cur).get("trained_on", [])) if cur_is_user else set()
    held = _count([samples[i].label for i in hold_i])
    cv = bool(hold_i) and min(held.values()) < GATE_CV_BELOW
    if cv:  # train on everything; gate on every sample of a label with 2+ (out of fold)
        train_i = list(range(len(samples)))
        hold_i = [i for i in train_i if counts[samples[i].label] >= 2]
    # "before" is only fair on samples the current head did not train on
    unseen = [i for i in hold_i if samples[i].sha256 not in seen]
    gate_note = ""
    if hold_i and not unseen:
        gate_note = " (the current head was trained on all of them: capture new samples for a fair gate)"
    elif len(unseen) < len(hold_i):
        hold_i = unseen
    classes = list(cur.labels)
    present = set(base_labels) | {samples[i].label for i in train_i}
    classes = [c for c in classes if c in present]
    new_labels = sorted(present - set(classes))
    classes += new_labels
    if len(classes) < 2:
        raise RetrainError("need samples of at least two labels")

    # 3. fit, warm-started from the current head's columns for labels it already has
    W0 = np.zeros((Xb.shape[1], len(classes)), np.float32)
    b0 = np.zeros(len(classes), np.float32)
    for j, c in enumerate(classes):
        if c in cur.labels and cur.W.shape[0] == Xb.shape[1]:
            W0[:, j] = cur.W[:, cur.labels.index(c)]
            b0[j] = cur.b[cur.labels.index(c)]

    def fit_on(user_i: list[int], phase: str, frac0: float, span: float) -> FitResult:
        def step_done(step: int, loss: float) -> None:
            report(phase, frac0 + span * step / rc.epochs, {"step": step, "loss": round(loss, 5)})
            _check(cancel)  # a stop ends the fit within a step

        return fit_head(Xb, base_labels, Xu[user_i], [samples[i].label for i in user_i], classes,
                        W0, b0, rc.l2, rc.epochs, max_seconds=max(0.1, deadline - time.monotonic()),
                        progress=step_done)

    t_fit = time.monotonic()
    report("training", 0.0, {"samples": int(len(Xb) + len(train_i)), "labels": classes})
    fit = fit_on(train_i, "training", 0.0, 1.0)
    timing["training"] = time.monotonic() - t_fit
    new = Head(fit.W, fit.b, tuple(classes))

    # 4. gate on user samples the new head was not trained on
    Xh = Xu[hold_i] if hold_i else np.zeros((0, Xb.shape[1]), np.float32)
    truth = [samples[i].label for i in hold_i]
    before = head_accuracy(cur, Xh, truth)
    gate = "held-out samples" if hold_i else "none"
    if cv and hold_i:
        t_cv = time.monotonic()
        k = min(CV_FOLDS, max(_count(truth).values()))
        folds = cv_folds(samples, hold_i, k)
        gate = f"cross-validation, {len(folds)} fold{'s' if len(folds) != 1 else ''}"
        pred: dict[int, str] = {}
        for n, fold in enumerate(folds):
            out = set(fold)
            f = fit_on([i for i in train_i if i not in out], "validating", n / len(folds), 1 / len(folds))
            scores = Xu[fold] @ f.W + f.b
            pred.update({i: classes[int(j)] for i, j in zip(fold, np.argmax(scores, axis=1))})
        after: Optional[float] = float(np.mean([pred[i] == samples[i].label for i in hold_i]))
        timing["validating"] = time.monotonic() - t_cv
    else:
        after = head_accuracy(new, Xh, truth)
    report("evaluating", 1.0, {"accuracy_before": before, "accuracy_after": after, "gate": gate})
    if before is None and force:
        swap, reason = True, "forced without a check: no held-out samples (capture at least 2 per label)"
    elif before is None:
        # no sample the new head was not trained on: nothing could show it is not worse
        swap, reason = False, ("not swapped: no held-out samples to check the new head on "
                               "(capture at least 2 per label, or use force to swap anyway)")
    elif after == 0 and not force:
        # "no worse" than a head that also gets none right shows nothing was learned (a
        # mislabelled sample, or too few of a new label)
        swap, reason = False, (f"not swapped: the new head gets none of the {len(hold_i)} sample(s) it "
                               f"was not trained on right ({gate}): check their labels or capture "
                               f"more (use force to swap anyway){gate_note}")
    elif after is not None and after >= before:
        swap, reason = True, f"{gate}: accuracy {before:.3f} -> {after:.3f}{gate_note}"
    elif force:
        swap, reason = True, f"forced although accuracy drops {before:.3f} -> {after:.3f} ({gate}){gate_note}"
    else:
        swap, reason = False, (f"not swapped: the new head scores {after:.3f} on samples it was not "
                               f"trained on ({gate}), the current one {before:.3f} (use force to "
                               f"swap anyway){gate_note}")
    per = {lab: counts[lab] for lab in sorted(keep)}
    warning = _coverage_warning(list(cur.labels), sorted(keep))
    result = RetrainResult(
        model=package.name, precision=precision, swapped=swap, forced=force, reason=reason,
        labels=classes, new_labels=new_labels, samples_per_label=per,
        train_per_label=_count([samples[i].label for i in train_i]),
        holdout_per_label=_count(truth), base_samples=int(len(Xb)), accuracy_before=before,
        accuracy_after=after, embeddings_computed=computed, steps=fit.steps, stopped=fit.stopped,
        duration_s=0.0, timing_s=timing, gate=gate, warning=warning, skipped_no_hand=no_hand)
    if swap:
        _check(cancel)  # the last moment: installing is quick and all or nothing
        result.head_path = str(install_head(cfg, package, new, cur, cur_is_user, {
            "trained_at": datetime.now(timezone.utc).isoformat(), "precision": precision,
            **fx.head_info(), "samples_per_label": per, "accuracy_before": before,
            "accuracy_after": after, "forced": force, "gate": gate,
            "trained_on": sorted(samples[i].sha256 for i in train_i)}, cur_identity))
    result.duration_s = round(time.monotonic() - t0, 3)
    return result


def _coverage_warning(labels: list[str], sampled: list[str]) -> Optional[str]:
    """Samples of only some labels teach the head that the look they share (a dark room, a
    new background) means one of those labels; the gate, scoring those labels only, cannot
    see what that does to the others."""
    missing = [lab for lab in labels if lab not in sampled]
    if not missing:
        return None
    return (f"the samples cover {len(labels) - len(missing)} of {len(labels)} labels: if they were taken "
            "in new conditions (light, background, camera angle), the new head may read every hand "
            f"there as {'/'.join(lab for lab in labels if lab in sampled) or 'a new label'}; capture "
            f"{', '.join(missing)} there too")


def _count(labels: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for lab in labels:
        out[lab] = out.get(lab, 0) + 1
    return dict(sorted(out.items()))
