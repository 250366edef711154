"""Golden test: every shipped model still scores its recorded accuracy on the bundled fixtures.

The fixtures are test-split images: tests/data/digits is the WHOLE sklearn-digits test
split (272 images), so digits-cnn must match its recorded accuracy exactly (plus one
image, for interpreter/XNNPACK rounding differences between runtime versions).
tests/data/hands is 8 images per count, a 48-image sample of the ~150-image test split
the fingers figures were measured on; a sample can fairly score a little below the
whole split, so the bound allows ONE more miss than the recorded rate predicts on that
many images (that tolerance, and nothing else).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from edge.evaluate import evaluate_dir
from edge.runtime.classifier import Classifier
from edge.runtime.package import load_package
from tests.conftest import DATA, HANDS, MODELS

SHIPPED = ("fingers-mobilenet", "fingers-cnn", "digits-cnn")


def _fixture(task: str) -> Path:
    return HANDS if task == "finger-count" else DATA / "digits"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_package_is_complete(name: str) -> None:
    root = MODELS / name
    if not (root / "model.json").is_file():
        pytest.fail(f"{root} is missing: run `make models`", pytrace=False)
    meta = json.loads((root / "model.json").read_text())
    assert set(meta["variants"]) == {"fp32", "fp16", "int8"}
    assert meta["variants"]["int8"]["bytes"] <= 0.3 * meta["variants"]["fp32"]["bytes"]
    if meta["task"] == "finger-count":
        assert meta["labels"] == ["0", "1", "2", "3", "4", "5"]
    if name == "fingers-mobilenet":
        assert meta["retrainable"] and {"backbone", "head", "base_embeddings"} <= set(meta["retrainable"])
    if name == "fingers-cnn":
        assert meta["variants"]["int8"]["bytes"] <= 150 * 1024


@pytest.mark.parametrize("precision", ["int8", "fp16", "fp32"])
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_keeps_its_recorded_accuracy(name: str, precision: str, tmp_path: Path) -> None:
    root = MODELS / name
    if not (root / "model.json").is_file():
        pytest.fail(f"{root} is missing: run `make models`", pytrace=False)
    pkg = load_package(root)  # also verifies every file's sha256
    recorded = pkg.metrics[precision]["accuracy"]
    clf = Classifier(pkg, precision, threads=2)  # shipped head, never a user's
    res = evaluate_dir(clf, _fixture(pkg.task))
    n = res["n"]
    allowed_misses = math.floor((1 - recorded) * n + 1e-9) + 1
    misses = n - round(res["accuracy"] * n)
    assert misses <= allowed_misses, (
        f"{name} {precision}: {misses} of {n} fixture images wrong; recorded accuracy "
        f"{recorded:.4f} allows {allowed_misses}")
