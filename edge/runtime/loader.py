"""Build a Classifier from the configuration (what every command that loads a model uses)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Optional

from edge.config import Config
from edge.runtime.classifier import Classifier
from edge.runtime.package import ModelPackage, resolve_package

log = logging.getLogger(__name__)


def open_package(cfg: Config, labels: Optional[Sequence[str]] = None) -> ModelPackage:
    labels = labels or cfg.model.labels
    pkg = resolve_package(cfg.model.name, cfg.resolved_models_dir(), labels)
    if labels and not pkg.single_file:
        log.warning("--labels / model.labels apply to a bare .tflite; %s uses the labels in its "
                    "model.json (%s)", pkg.name, ",".join(pkg.labels))
    return pkg


def open_classifier(cfg: Config, labels: Optional[Sequence[str]] = None,
                    package: Optional[ModelPackage] = None) -> Classifier:
    """The configured model and precision, with the user's current head where there is one."""
    pkg = package or open_package(cfg, labels)
    precision: str = cfg.model.precision
    if pkg.single_file:
        precision = next(iter(pkg.variants))
    return Classifier(pkg, precision, cfg.model.threads, state_dir=cfg.state_dir,
                      roi=cfg.camera.roi)
