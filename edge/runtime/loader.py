"""Build the configured counter (what every command that loads a model uses).

A finger-count package runs behind the hand stage (edge.counting.HandCounter): the landmark
head on the hand's landmarks, or a crop classifier on the hand crop, optionally fused with a
crop classifier (hands.fuse_with). Other models (digits, a bare .tflite) classify the frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Optional

from edge.config import Config
from edge.counting import Counter, HandCounter
from edge.hands import HandStage, hand_stage_from_config
from edge.hands.counter import LandmarkCounter, is_landmark_package
from edge.runtime.classifier import Classifier
from edge.runtime.package import ModelPackage, package_by_name, resolve_package

log = logging.getLogger(__name__)


def open_package(cfg: Config, labels: Optional[Sequence[str]] = None) -> ModelPackage:
    labels = labels or cfg.model.labels
    pkg = resolve_package(cfg.model.name, cfg.resolved_models_dir(), labels)
    if labels and not pkg.single_file:
        log.warning("--labels / model.labels apply to a bare .tflite; %s uses the labels in its "
                    "model.json (%s)", pkg.name, ",".join(pkg.labels))
    return pkg


def uses_hand_stage(cfg: Config, pkg: ModelPackage) -> bool:
    """Finger counting locates the hand first (hands.enabled); a landmark head needs it."""
    return is_landmark_package(pkg) or (cfg.hands.enabled and pkg.task == "finger-count"
                                        and not pkg.single_file)


def counting_model(cfg: Config, pkg: ModelPackage, precision: str, threads: int) -> Any:
    """The model that counts from a hand (or classifies a frame), with the user's head."""
    if is_landmark_package(pkg):
        return LandmarkCounter(pkg, state_dir=cfg.state_dir)
    if pkg.single_file:
        precision = next(iter(pkg.variants))
    return Classifier(pkg, precision, threads, state_dir=cfg.state_dir, roi=cfg.camera.roi)


def open_counter(cfg: Config, pkg: ModelPackage, precision: str, threads: int,
                 stage: Optional[HandStage] = None) -> Counter:
    """pkg's counter; behind `stage` (or one made from cfg.hands) when it counts fingers."""
    model = counting_model(cfg, pkg, precision, threads)
    if not uses_hand_stage(cfg, pkg):
        return model
    crop = None
    fuse = cfg.hands.fuse_with
    if fuse and is_landmark_package(pkg) and fuse != pkg.name:
        fpkg = package_by_name(fuse, cfg.resolved_models_dir())
        crop = Classifier(fpkg, cfg.model.precision, threads, state_dir=cfg.state_dir)
    return HandCounter(stage or hand_stage_from_config(cfg), model, crop, threads)


def open_classifier(cfg: Config, labels: Optional[Sequence[str]] = None,
                    package: Optional[ModelPackage] = None) -> Counter:
    """The configured model and precision, with the user's current head where there is one."""
    pkg = package or open_package(cfg, labels)
    return open_counter(cfg, pkg, cfg.model.precision, cfg.model.threads)


def reload_counter(cfg: Config, clf: Counter) -> Counter:
    """The same model, precision and hand stage with whatever head is now current."""
    if isinstance(clf, HandCounter):
        return clf.with_model(counting_model(cfg, clf.package, clf.precision, clf.threads))
    return Classifier(clf.package, clf.precision, clf.threads, state_dir=cfg.state_dir, roi=clf.roi)
