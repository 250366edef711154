"""Build a Classifier from the configuration (what every command that loads a model uses)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from edge.config import Config
from edge.runtime.classifier import Classifier
from edge.runtime.package import ModelPackage, resolve_package


def open_package(cfg: Config, labels: Optional[Sequence[str]] = None) -> ModelPackage:
    return resolve_package(cfg.model.name, cfg.resolved_models_dir(), labels or cfg.model.labels)


def open_classifier(cfg: Config, labels: Optional[Sequence[str]] = None,
                    package: Optional[ModelPackage] = None) -> Classifier:
    """The configured model and precision, with the user's current head where there is one."""
    pkg = package or open_package(cfg, labels)
    precision = cfg.model.precision
    if pkg.single_file:
        precision = next(iter(pkg.variants))
    return Classifier(pkg, precision, cfg.model.threads, state_dir=cfg.state_dir,
                      roi=cfg.camera.roi)
