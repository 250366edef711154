"""bench --data against eval: the same images, the same skips, the same model scored.

Real shipped models through the real interpreter; eval is the reference for every figure.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from edge.cli import main as cli
from edge.runtime.classifier import Head
from edge.runtime.package import load_package
from tests.conftest import HANDS, MODELS


def _hands(tmp: Path, labels: tuple[str, ...] = ("0", "1", "2", "3"), per: int = 3) -> Path:
    data = tmp / "data"
    for lab in labels:
        (data / lab).mkdir(parents=True)
        for p in sorted((HANDS / lab).glob("*.JPG"))[:per]:
            shutil.copy(p, data / lab / p.name)
    return data


def _eval(model: str, data: Path, tmp: Path, *extra: str) -> dict:
    out = tmp / "eval.json"
    assert cli(["eval", "--data", str(data), "--model", model, "--json", str(out),
                "--models-dir", str(MODELS), *extra]) == 0
    return json.loads(out.read_text())


def _bench(argv: list[str], tmp: Path) -> tuple[int, dict]:
    out = tmp / "bench.json"
    rc = cli(["bench", *argv, "--runs", "10", "--warmup", "1", "--threads", "1",
              "--models-dir", str(MODELS), "--json", str(out)])
    return rc, json.loads(out.read_text()) if out.exists() else {}


def test_two_files_of_the_same_name_keep_their_own_accuracy(tmp_path: Path) -> None:
    a, b = tmp_path / "A" / "m_fp32.tflite", tmp_path / "B" / "m_fp32.tflite"
    a.parent.mkdir()
    b.parent.mkdir()
    shutil.copy(MODELS / "fingers-cnn" / "fingers-cnn_fp32.tflite", a)
    shutil.copy(MODELS / "digits-cnn" / "digits-cnn_fp32.tflite", b)
    data = _hands(tmp_path)
    rc, doc = _bench([str(a), str(b), "--data", str(data)], tmp_path)
    assert rc == 0
    got = {r["file"]: r["accuracy"] for r in doc["records"]}
    want = {str(p): _eval(str(p), data, tmp_path)["accuracy"] for p in (a, b)}
    assert want[str(a)] != want[str(b)]  # else the test could not tell them apart
    assert got == pytest.approx(want, abs=1e-6)


def test_bench_and_eval_take_the_same_images_and_skip_the_same_ones(tmp_path: Path, capsys) -> None:
    data = _hands(tmp_path, ("2", "3"), 2)
    src = next((HANDS / "3").glob("*.JPG"))
    cv2.imwrite(str(data / "3" / "hand.tif"), cv2.imread(str(src)))  # eval used to skip .tif
    (data / "2" / "broken.png").write_bytes(b"not a png")
    ev = _eval("fingers-cnn", data, tmp_path, "--precision", "int8")
    capsys.readouterr()
    rc, doc = _bench(["fingers-cnn", "--precision", "int8", "--data", str(data)], tmp_path)
    err = capsys.readouterr().err
    assert rc == 0, err
    (r,) = doc["records"]
    assert ev["n"] == r["n_images"] == 5
    assert r["accuracy"] == pytest.approx(ev["accuracy"], abs=1e-6)
    assert ev["skipped_files"] == r["skipped_files"] == [str(data / "2" / "broken.png")]
    assert f"note: {data / '2' / 'broken.png'}: not a readable image; skipped" in err


def test_only_unreadable_images_keep_the_latency_and_say_why(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    (data / "3").mkdir(parents=True)
    (data / "3" / "a.jpg").write_bytes(b"junk")
    rc, doc = _bench(["fingers-cnn", "--precision", "int8", "--data", str(data)], tmp_path)
    cap = capsys.readouterr()
    assert rc == 2 and "Traceback" not in cap.err
    (r,) = doc["records"]
    assert r["p50_ms"] > 0 and "no readable image" in r["accuracy_error"]
    assert "not scored" in cap.out and "failed (not measured)" not in cap.out
    assert cap.err.strip().splitlines()[-1] == \
        "fingercount: error: 1 case(s) have no accuracy (see 'notes' above)"


def test_a_broken_unrequested_variant_does_not_cost_the_requested_one(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS / "fingers-cnn", models / "fingers-cnn")
    (models / "fingers-cnn" / "fingers-cnn_fp32.tflite").write_bytes(b"corrupt")
    data = _hands(tmp_path)
    out = tmp_path / "b.json"
    assert cli(["bench", "fingers-cnn", "--precision", "int8", "--data", str(data), "--runs", "10",
                "--threads", "1", "--models-dir", str(models), "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["records"]
    assert r["accuracy"] == pytest.approx(_eval("fingers-cnn", data, tmp_path, "--precision", "int8")
                                          ["accuracy"], abs=1e-6)


def test_bench_scores_the_timed_file_not_the_users_head(tmp_path: Path) -> None:
    """The row times the fused .tflite, so its accuracy is of that file too; a user head whose
    labels are shifted by one would change every prediction if bench used it."""
    root = MODELS / "fingers-mobilenet"
    shipped = Head.load(load_package(root).file_path("head"))
    state = tmp_path / "state"
    shifted = list(shipped.labels[1:]) + [shipped.labels[0]]
    Head(shipped.W, shipped.b, tuple(shifted)).save(state / "heads" / "fingers-mobilenet" / "head.npz")
    data = _hands(tmp_path, per=2)
    rc, doc = _bench(["fingers-mobilenet", "--precision", "fp32", "--data", str(data),
                      "--state-dir", str(state)], tmp_path)
    assert rc == 0
    # the fused file behind the hand stage (a finger-count package is scored there, as eval does)
    from edge.counting import HandCounter
    from edge.evaluate import evaluate_dir
    from edge.hands import load_hand_stage
    from edge.runtime.classifier import Classifier

    fused = evaluate_dir(HandCounter(load_hand_stage(MODELS, tracking=False),
                                     Classifier(load_package(root), "fp32", threads=1)), data)
    (r,) = doc["records"]
    assert r["accuracy"] == pytest.approx(fused["accuracy"], abs=1e-6) and r["accuracy"] > 0.5


def test_an_fp16_file_is_named_and_scored_as_fp16(tmp_path: Path, capsys) -> None:
    f = MODELS / "fingers-cnn" / "fingers-cnn_fp16.tflite"
    data = _hands(tmp_path)
    ev = _eval(str(f), data, tmp_path)
    assert ev["precision"] == "fp16" and ev["model"].endswith("/fp16")
    rc, doc = _bench([str(f), "--data", str(data)], tmp_path)
    assert rc == 0
    (r,) = doc["records"]
    assert r["precision"] == "fp16"
    assert r["accuracy"] == pytest.approx(ev["accuracy"], abs=1e-6)
