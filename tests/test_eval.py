"""fingercount eval and edge/evaluate.py: metrics and the CLI on shipped models, real TFLite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge import cli
from edge.evaluate import metrics
from edge.runtime.classifier import Head
from edge.runtime.package import load_package
from tests.conftest import HANDS, MODELS


def _need(name: str) -> Path:
    p = MODELS / name
    if not (p / "model.json").is_file():
        pytest.fail(f"{p} is missing: build it with `make models` "
                    f"(fingercount-convert build converter/recipes/{name}.yaml ...)", pytrace=False)
    return p


def test_metrics_hand_computed_case() -> None:
    # true: a a a b b c ; pred: a a b b c c
    m = metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3, abs=1e-6),
                                   "f1": pytest.approx(0.8, abs=1e-6), "n": 3, "no_hand": 0}
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["recall"] == 1.0
    f1s = [0.8, 0.5, 2 * 0.5 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1s), abs=1e-6)


def test_metrics_class_without_examples_is_left_out_of_macro_f1() -> None:
    m = metrics([0, 0], [0, 0], ["a", "b"])
    assert m["per_class"]["b"]["n"] == 0
    assert m["macro_f1"] == 1.0


def _run_eval(tmp_path: Path, model: str, precision: str, data: Path, capsys) -> tuple[int, dict, str]:
    out = tmp_path / f"{model}-{precision}.json"
    rc = cli.main(["eval", "--data", str(data), "--model", model, "--precision", precision,
                   "--json", str(out), "--models-dir", str(MODELS), "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err
    return rc, json.loads(out.read_text()) if out.exists() else {}, err


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_eval_json_on_hands(tmp_path: Path, capsys, precision: str) -> None:
    _need("fingers-cnn")
    rc, res, err = _run_eval(tmp_path, "fingers-cnn", precision, HANDS, capsys)
    assert rc == 0
    assert res["labels"] == ["0", "1", "2", "3", "4", "5"]
    n_images = sum(len(list((HANDS / lab).glob("*.JPG"))) for lab in res["labels"])
    assert res["n"] == n_images
    conf = np.array(res["confusion"])
    # behind the hand stage: a photo where no hand was found is in no column, and wrong
    assert conf.sum() + res["no_hand"] == n_images
    assert res["accuracy"] == pytest.approx(np.trace(conf) / n_images, abs=1e-6)
    for i, lab in enumerate(res["labels"]):
        pc = res["per_class"][lab]
        assert pc["n"] == conf[i].sum() + pc["no_hand"]
        assert pc["recall"] == pytest.approx(conf[i, i] / pc["n"], abs=1e-6)
    assert 0.0 <= res["macro_f1"] <= 1.0
    # Folders 6-9 are hand signs but not counts: ignored, with a note.
    assert sorted(res["ignored_folders"]) == ["6", "7", "8", "9"]
    assert "folder '6' is not one of the model's labels" in err


def test_eval_uses_the_users_current_head(tmp_path: Path, capsys) -> None:
    root = _need("fingers-mobilenet")
    pkg = load_package(root)
    shipped = Head.load(pkg.file_path("head"))
    rc, base, _ = _run_eval(tmp_path, "fingers-mobilenet", "fp32", HANDS, capsys)
    assert rc == 0
    # A user head whose labels are shifted by one: every prediction moves to the next label,
    # so the score can only stay the same if eval ignored the head.
    shifted = list(shipped.labels[1:]) + [shipped.labels[0]]
    Head(shipped.W, shipped.b, tuple(shifted)).save(
        tmp_path / "state" / "heads" / "fingers-mobilenet" / "head.npz")
    rc, res, _ = _run_eval(tmp_path, "fingers-mobilenet", "fp32", HANDS, capsys)
    assert rc == 0
    assert res["model"].endswith("+head")
    assert res["accuracy"] < base["accuracy"] - 0.5


def test_eval_missing_dir_is_one_clear_line(tmp_path: Path, capsys) -> None:
    _need("fingers-cnn")
    rc = cli.main(["eval", "--data", str(tmp_path / "nope"), "--model", "fingers-cnn",
                   "--models-dir", str(MODELS), "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"fingercount: error: {tmp_path / 'nope'}: no such directory"]


def test_eval_dir_without_known_labels(tmp_path: Path, capsys) -> None:
    _need("fingers-cnn")
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "a.jpg").write_bytes((HANDS / "0").glob("*.JPG").__next__().read_bytes())
    rc = cli.main(["eval", "--data", str(tmp_path), "--model", "fingers-cnn",
                   "--models-dir", str(MODELS), "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no images in folders named like the model's labels" in err


def test_eval_skips_unreadable_image(tmp_path: Path, capsys) -> None:
    _need("fingers-cnn")
    data = tmp_path / "data"
    (data / "3").mkdir(parents=True)
    src = next((HANDS / "3").glob("*.JPG"))
    (data / "3" / "good.jpg").write_bytes(src.read_bytes())
    (data / "3" / "broken.jpg").write_bytes(b"not a jpeg")
    rc, res, err = _run_eval(tmp_path, "fingers-cnn", "int8", data, capsys)
    assert rc == 0
    assert res["n"] == 1
    assert "broken.jpg: not a readable image; skipped" in err


def test_no_hand_is_wrong_and_counted_apart() -> None:
    """A photo where the hand stage found no hand is a miss in accuracy and recall, and is
    not put in any column of the confusion matrix."""
    from edge.evaluate import NO_HAND

    m = metrics([0, 0, 1, 1], [0, NO_HAND, 1, NO_HAND], ["a", "b"])
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["no_hand"] == 2
    assert m["confusion"] == [[1, 0], [0, 1]]
    assert m["per_class"]["a"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["a"]["no_hand"] == 1 and m["per_class"]["a"]["n"] == 2


SHARED_HANDS = (MODELS.parent / ".." / "shared" / "data" / "sign-language-digits").resolve()


@pytest.mark.parametrize("name", ["fingers-cnn", "fingers-mobilenet"])
def test_shipped_finger_models_list_their_training_images(name: str) -> None:
    from edge.runtime.package import sha256_file
    from edge.training_files import package_hashes

    meta = json.loads((MODELS / name / "model.json").read_text())
    entry = meta["provenance"]["training_files"]
    assert sha256_file(MODELS / name / entry["file"]) == entry["sha256"]
    hashes = package_hashes(MODELS / name, meta["provenance"])
    assert hashes is not None and len(hashes) == entry["count"] > 1000


def test_eval_warns_once_when_the_folder_holds_training_images(tmp_path: Path, capsys) -> None:
    from edge.training_files import package_hashes, sha256_path

    meta = json.loads((MODELS / "fingers-cnn" / "model.json").read_text())
    trained = package_hashes(MODELS / "fingers-cnn", meta["provenance"])
    assert trained is not None
    if not SHARED_HANDS.is_dir():
        pytest.fail(f"{SHARED_HANDS} is missing (the shared hand data)", pytrace=False)
    for lab in ("2", "3"):  # one training image each, renamed, and one test-split image of "3"
        name = next(n for n in sorted(trained.values()) if n.startswith(f"{lab}/"))
        (tmp_path / "d" / lab).mkdir(parents=True)
        (tmp_path / "d" / lab / "mine.jpg").write_bytes((SHARED_HANDS / name).read_bytes())
    held_out = next(p for p in sorted((SHARED_HANDS / "3").iterdir()) if sha256_path(p) not in trained)
    (tmp_path / "d" / "3" / "other.jpg").write_bytes(held_out.read_bytes())
    args = ["eval", "--data", str(tmp_path / "d"), "--model", "fingers-cnn", "--state-dir", str(tmp_path / "s")]
    assert cli.main([*args, "--json", str(tmp_path / "e.json")]) == 0
    warn = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert warn == [f"warning: 2 of 3 images in {tmp_path / 'd'} are fingers-cnn's own training images "
                    "(its training_files.txt): their accuracy says how well it learned them, not how it "
                    "does on photos it has not seen"]
    assert json.loads((tmp_path / "e.json").read_text())["training_overlap"] == 2
    # the bundled photos are test-split images (their names hash past 0.85): no warning
    assert cli.main(["eval", "--data", str(HANDS), "--model", "fingers-cnn", "--state-dir",
                     str(tmp_path / "s")]) == 0
    assert "warning:" not in capsys.readouterr().err
