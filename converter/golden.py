"""Golden predictions of the shipped models on the committed fixtures.

    python -m converter.golden            # every package in models/
    python -m converter.golden fingers-cnn

writes tests/data/golden/<name>.json: for each precision, the sha256 of the file it
was made with, the fixture accuracy, and every fixture image's predicted label and
score. tests/test_models_golden.py asserts the shipped models still produce them
(cf. tensorflow/examples' object_detector_test.py). Run it after `make models`
(the Makefile does), look at the diff, commit it with the models.

Edge runtime only (no TensorFlow): the predictions are what a device computes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.evaluate import class_folder_items
from edge.runtime.classifier import Classifier
from edge.runtime.package import load_package
from edge.runtime.preprocess import read_image

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
GOLDEN = ROOT / "tests" / "data" / "golden"
FIXTURES = {"finger-count": ROOT / "tests" / "data" / "hands", "digit": ROOT / "tests" / "data" / "digits"}
PRECISIONS = ("fp32", "fp16", "int8")


def predictions(clf: Classifier, fixture: Path) -> tuple[dict[str, dict], int, int]:
    """{relative path: {"label", "score"}}, correct, n — shipped head, one thread."""
    items, _ = class_folder_items(fixture, clf.labels)
    out: dict[str, dict] = {}
    right = 0
    for path, k in items:
        probs, _ = clf.classify(read_image(str(path)))
        top = int(np.argmax(probs))
        out[path.relative_to(fixture).as_posix()] = {"label": clf.labels[top],
                                                     "score": round(float(probs[top]), 6)}
        right += top == k
    return out, right, len(items)


def golden_for(root: Path) -> dict:
    pkg = load_package(root)  # verifies every file's sha256
    fixture = FIXTURES[pkg.task]
    doc: dict = {"model": pkg.name, "version": pkg.version,
                 "fixture": fixture.relative_to(ROOT).as_posix(),
                 "written_by": "python -m converter.golden", "variants": {}}
    for prec in PRECISIONS:
        clf = Classifier(pkg, prec, threads=1)
        preds, right, n = predictions(clf, fixture)
        doc["variants"][prec] = {"sha256": pkg.meta["variants"][prec]["sha256"], "correct": right,
                                 "n": n, "accuracy": round(right / n, 6), "predictions": preds}
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m converter.golden", description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="package names (default: all in models/)")
    ap.add_argument("--models", default=str(MODELS))
    ap.add_argument("--out", default=str(GOLDEN))
    a = ap.parse_args(argv)
    models = Path(a.models)
    # the hand stage's packages have their own goldens (python -m converter.golden_hands)
    names = a.names or sorted(p.name for p in models.iterdir() if (p / "model.json").is_file()
                              and json.loads((p / "model.json").read_text()).get("task") in FIXTURES)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    for name in names:
        doc = golden_for(models / name)
        dest = Path(a.out) / f"{name}.json"
        dest.write_text(json.dumps(doc, indent=1) + "\n")
        accs = ", ".join(f"{p} {v['accuracy'] * 100:.2f} %" for p, v in doc["variants"].items())
        print(f"{dest}: {name} {doc['version']} on {doc['fixture']} (n={doc['variants']['int8']['n']}): {accs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
