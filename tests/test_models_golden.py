"""Golden tests: the shipped models still make the predictions committed for them.

tests/data/golden/<name>.json (written by `python -m converter.golden` right after
`make models`) holds, per precision, the sha256 of the model file and every fixture
image's label and score (fixtures: tests/data/hands, 8 test-split photos per count;
tests/data/digits, the 500 MNIST digits digits-cnn holds out). Like tensorflow/examples'
object_detector_test.py, each image must get the SAME label, its score within
SCORE_TOL, and the fixture accuracy must be at least the recorded one.

SCORE_TOL: on the machine that wrote the goldens the scores repeat exactly. Another
CPU (Arm NEON vs x86 AVX-512) or interpreter version may round differently inside
XNNPACK (float summation order, int8 requantization off by one step, which then
propagates); 0.02 is five steps of the int8 output (1/256). Labels get no tolerance.
"""

from __future__ import annotations

import json

import pytest

from edge.runtime.classifier import Classifier
from edge.runtime.package import load_package
from edge.runtime.preprocess import read_image
from tests.conftest import DATA, MODELS, ROOT

SHIPPED = ("fingers-mobilenet", "fingers-cnn", "digits-cnn")
GOLDEN = DATA / "golden"
SCORE_TOL = 0.02
REGENERATE = "check the new model, then run `.venv/bin/python -m converter.golden` and commit the result"


def _golden(name: str) -> dict:
    path = GOLDEN / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: {REGENERATE}", pytrace=False)
    return json.loads(path.read_text())


def known_unmet_bars() -> dict[str, set[str]]:
    """{package: bar names} from models/BARS-NOT-MET.md's table."""
    out: dict[str, set[str]] = {}
    for line in (MODELS / "BARS-NOT-MET.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and cells[0] not in ("package", "---"):
            out.setdefault(cells[0], set()).add(cells[1])
    return out


def test_the_unmet_bars_list_names_shipped_packages_and_their_bars() -> None:
    for name, bars in known_unmet_bars().items():
        meta = json.loads((MODELS / name / "model.json").read_text())
        assert bars <= {b["name"] for b in meta["bars"]}, (name, bars)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_package_meets_its_contract(name: str) -> None:
    root = MODELS / name
    if not (root / "model.json").is_file():
        pytest.fail(f"{root} is missing: run `make models`", pytrace=False)
    meta = json.loads((root / "model.json").read_text())
    assert set(meta["variants"]) == {"fp32", "fp16", "int8"}
    ratio = meta["variants"]["int8"]["bytes"] / meta["variants"]["fp32"]["bytes"]
    assert ratio <= 0.3, f"{name}: int8 is {ratio:.3f} x the fp32 bytes (bar 0.3)"
    unmet = {b["name"] for b in meta["bars"] if not b["met"]}
    assert unmet == known_unmet_bars().get(name, set()), (
        f"{name}: model.json's unmet bars {sorted(unmet)} are not the ones models/BARS-NOT-MET.md lists")
    if meta["task"] == "finger-count":
        assert meta["labels"] == ["0", "1", "2", "3", "4", "5"]
    if name == "fingers-mobilenet":
        assert meta["retrainable"] and {"backbone", "head", "base_embeddings"} <= set(meta["retrainable"])
        assert all(meta["metrics"][p]["backbone_head_agreement"] == 1.0 for p in ("fp32", "fp16", "int8"))
    if name in ("fingers-cnn", "digits-cnn"):
        assert meta["variants"]["int8"]["bytes"] <= 150 * 1024
    if name == "digits-cnn":  # MNIST, through the edge's MNIST-like preprocessing
        assert meta["task"] == "digit" and "MNIST" in meta["provenance"]["dataset"]


@pytest.mark.parametrize("precision", ["int8", "fp16", "fp32"])
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_makes_its_golden_predictions(name: str, precision: str) -> None:
    root = MODELS / name
    if not (root / "model.json").is_file():
        pytest.fail(f"{root} is missing: run `make models`", pytrace=False)
    golden = _golden(name)
    want = golden["variants"][precision]
    pkg = load_package(root)  # also verifies every file's sha256
    assert pkg.meta["variants"][precision]["sha256"] == want["sha256"], (
        f"models/{name} {precision} is not the model the goldens were written for: {REGENERATE}")
    fixture = ROOT / golden["fixture"]
    clf = Classifier(pkg, precision, threads=1)  # the shipped head, never a user's
    wrong_label, off_score, right = [], [], 0
    for rel, exp in sorted(want["predictions"].items()):
        probs, _ = clf.classify(read_image(str(fixture / rel)))
        top = int(probs.argmax())
        label, score = clf.labels[top], float(probs[top])
        right += label == rel.split("/")[0]
        if label != exp["label"]:
            wrong_label.append(f"{rel}: {label} ({score:.3f}), golden {exp['label']} ({exp['score']:.3f})")
        elif abs(score - exp["score"]) > SCORE_TOL:
            off_score.append(f"{rel}: {label} score {score:.4f}, golden {exp['score']:.4f}")
    n = len(want["predictions"])
    # the golden covers the whole fixture: an image added or lost would go unchecked
    on_disk = {p.relative_to(fixture).as_posix() for lab in clf.labels if (fixture / lab).is_dir()
               for p in (fixture / lab).iterdir() if p.is_file()}
    assert on_disk == set(want["predictions"]), f"{fixture} changed since the goldens: {REGENERATE}"
    assert not wrong_label, f"{name} {precision}: labels differ from the golden:\n" + "\n".join(wrong_label)
    assert not off_score, f"{name} {precision}: scores beyond {SCORE_TOL}:\n" + "\n".join(off_score)
    assert right >= want["correct"], (
        f"{name} {precision}: {right} of {n} fixture images right, recorded {want['correct']}")
