"""fingercount-convert build of the landmark count head (toy), through the real hand stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from converter.data import split_of
from converter.landmark_build import build_landmarks
from converter.recipe import load_recipe
from edge.hands.counter import LandmarkCounter
from edge.runtime.package import load_package
from tests.conftest import HANDS, MODELS

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "converter" / "recipes" / "fingers-landmarks.yaml"
DEV = ROOT / "tests" / "data" / "hands-real" / "epsrc"


def photos(root: Path) -> Path:
    """tests/data/hands' photos (all held-out photos of the studio set) renamed so that the
    split rule sends some of each class to train, validation and test."""
    names: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    i = 0
    while min(len(v) for v in names.values()) < 8:
        names[split_of(f"img{i}.jpg")].append(f"img{i}.jpg")
        i += 1
    order = [names[s][j] for j in range(8) for s in ("train", "train", "val", "test")]
    for d in sorted(p for p in HANDS.iterdir() if p.is_dir() and p.name in "012345"):
        (root / d.name).mkdir(parents=True)
        for src, name in zip(sorted(d.glob("*.JPG")), order):
            shutil.copy(src, root / d.name / name)
    return root


def test_toy_build_writes_a_landmark_package_and_caches_the_landmarks(tmp_path: Path, capsys) -> None:
    out = tmp_path / "models"
    out.mkdir()
    for name in ("palm-detection-lite", "hand-landmark-full"):
        shutil.copytree(MODELS / name, out / name)
    r = load_recipe(RECIPE, {"dev.data": str(DEV)}, toy=True)
    r.raw.pop("per_class", None)  # every photo of tests/data/hands: 8 per class
    cache = tmp_path / "cache"
    data = photos(tmp_path / "data")
    final, meta = build_landmarks(r, str(data), out, "test", toy="test", cache_dir=cache)
    assert (final / "head.npz").is_file() and (final / "report.md").is_file()
    pkg = load_package(final)
    assert pkg.meta["counter"] == "landmarks" and pkg.version.endswith("+toy")
    m = json.loads((final / "model.json").read_text())["metrics"]
    assert set(m) == {"val", "test", "dev"} and m["dev"]["no_hand_photos"] == 3
    assert m["dev"]["n"] == len(list(DEV.glob("[1-5]/*.jpg"))) and m["test"]["n"] > 0 and len(m["dev"]["confusion"][0]) == 7  # a "no hand" column
    LandmarkCounter(pkg)  # loads, its head verified by sha256
    assert "computed" in capsys.readouterr().err
    # a rebuild reads every photo's landmarks from the cache
    build_landmarks(r, str(data), out, "test", toy="test", replace=True, cache_dir=cache)
    assert "0 computed" in capsys.readouterr().err
