"""fingercount-convert import-hands on a mediapipe wheel: four verified packages with licence,
attribution and provenance; refusals are one line and write nothing.

The wheel is built here from the shipped packages' model files at the wheel's member paths
(the real 35 MB wheel is a download, which tests may not do); the packages it makes must
hold exactly the same bytes as the committed ones."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from converter import cli as convert_cli
from converter.hands_import import HAND_MODELS
from edge.hands import load_hand_stage
from edge.runtime.package import load_package
from edge.runtime.preprocess import read_image
from tests.conftest import DATA, MODELS

WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"


def make_wheel(path: Path, skip: str = "", licence: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for m in HAND_MODELS:
            if m.member != skip:
                z.write(MODELS / m.name / f"{m.name}_fp32.tflite", m.member)
        if licence:
            z.write(MODELS / "palm-detection-lite" / "LICENSE", "mediapipe-0.10.21.dist-info/LICENSE")
        z.writestr("mediapipe/__init__.py", "")
    return path


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert convert_cli.main(list(argv)) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("fingercount-convert: error: "), err
    return lines[0]


def test_import_hands_writes_four_verified_packages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = make_wheel(tmp_path / WHEEL_NAME)
    out = tmp_path / "models"
    assert convert_cli.main(["import-hands", "--wheel", str(wheel), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / m.name) for m in HAND_MODELS]
    wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    for m in HAND_MODELS:
        pkg = load_package(out / m.name)
        assert pkg.task == m.task and pkg.version == "0.10.21" and list(pkg.variants) == ["fp32"]
        data = pkg.variant_bytes("fp32")  # sha256 checked
        assert data == (MODELS / m.name / f"{m.name}_fp32.tflite").read_bytes()
        meta = pkg.meta
        assert meta["input"] == {"height": 192 if m.task == "palm-detection" else 224,
                                 "width": 192 if m.task == "palm-detection" else 224,
                                 "channels": 3, "color": "rgb", "range": [0, 1]}
        assert meta["license"] == "Apache-2.0" and "Google LLC" in meta["attribution"]
        assert "github.com/google/mediapipe" in meta["attribution"]
        p = meta["provenance"]
        assert p["source"] == "mediapipe 0.10.21 wheel from PyPI" and p["wheel"] == WHEEL_NAME
        assert p["wheel_sha256"] == wheel_sha and p["member"] == m.member
        assert p["member_sha256"] == hashlib.sha256(data).hexdigest() == meta["variants"]["fp32"]["sha256"]
        assert p["command"].startswith("fingercount-convert import-hands --wheel ") and p["date"] and p["git_commit"]
        inv = meta["metrics"]["fp32"]["invoke"]
        assert inv["p50_ms"] > 0 and 0 < inv["cpu_p50_ms"] <= inv["p50_ms"] * 1.2 and inv["threads"] == 1
        assert (out / m.name / "LICENSE").read_bytes() == (MODELS / "palm-detection-lite" / "LICENSE").read_bytes()
        card = (out / m.name / "README.md").read_text()
        assert m.member in card and "Apache-2.0" in card and "ms |" in card
        assert not list(out.glob(".*"))  # no staging folders left
    # what was imported runs: the stage finds the hand in a committed photo
    stage = load_hand_stage(out)
    assert stage(read_image(str(DATA / "hands-real" / "epsrc" / "3" / "set1_three_1.jpg"))) is not None


def test_import_hands_refuses_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "models"
    wheel = make_wheel(tmp_path / WHEEL_NAME)
    assert "--wheel" in _fails(capsys, "import-hands", "--wheel", str(tmp_path / "nope.whl"), "--out", str(out))
    other = make_wheel(tmp_path / "mediapipe-0.10.35-cp311-cp311-manylinux_2_28_x86_64.whl")
    assert "not a mediapipe 0.10.21 wheel" in _fails(capsys, "import-hands", "--wheel", str(other), "--out", str(out))
    (tmp_path / "x").mkdir()
    lacking = make_wheel(tmp_path / "x" / WHEEL_NAME, skip=HAND_MODELS[3].member)
    assert f"lacks {HAND_MODELS[3].member}" in _fails(capsys, "import-hands", "--wheel", str(lacking), "--out", str(out))
    (tmp_path / "y").mkdir()
    nolic = make_wheel(tmp_path / "y" / WHEEL_NAME, licence=False)
    assert "LICENSE" in _fails(capsys, "import-hands", "--wheel", str(nolic), "--out", str(out))
    (tmp_path / "z").mkdir()
    broken = tmp_path / "z" / WHEEL_NAME
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert "not a readable wheel" in _fails(capsys, "import-hands", "--wheel", str(broken), "--out", str(out))
    assert not out.exists() or not any(out.iterdir())  # nothing written by any refusal
    # an existing package is not replaced without --force, and is with it
    assert convert_cli.main(["import-hands", "--wheel", str(wheel), "--out", str(out)]) == 0
    capsys.readouterr()
    before = json.loads((out / "hand-landmark-lite" / "model.json").read_text())
    assert "already exists" in _fails(capsys, "import-hands", "--wheel", str(wheel), "--out", str(out))
    assert json.loads((out / "hand-landmark-lite" / "model.json").read_text()) == before
    assert convert_cli.main(["import-hands", "--wheel", str(wheel), "--out", str(out), "--force"]) == 0
    with pytest.raises(SystemExit):
        convert_cli.main(["import-hands", "--out", str(out)])  # --wheel or --download is required


def test_shipped_hand_packages_come_from_the_real_wheel() -> None:
    """The committed packages record the PyPI wheel they were extracted from."""
    for m in HAND_MODELS:
        p = load_package(MODELS / m.name).provenance
        assert p["wheel"] == WHEEL_NAME and p["member"] == m.member
        assert p["wheel_sha256"] == "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
