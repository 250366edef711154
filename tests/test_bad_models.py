"""Bad model files: one clear error line and a non-zero exit, never a crash or a traceback;
over MQTT set_model answers ok:false and the old model keeps serving."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import HANDS, MODELS, ROOT
from tests.test_pipeline import model_dir

IMAGE = str(sorted((HANDS / "3").glob("*.JPG"))[0])
SHIPPED_CNN_VERSION = json.loads((MODELS / "fingers-cnn" / "model.json").read_text())["version"]


def corrupt_package(tmp: Path, how: Callable[[bytes], bytes], fix_sha: bool = True) -> Path:
    """A copy of the shipped fingers-cnn whose int8 file is replaced by how(original)."""
    src = model_dir()
    dst = tmp / src.name
    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    entry = meta["variants"]["int8"]
    path = dst / entry["file"]
    data = how(path.read_bytes())
    path.write_bytes(data)
    if fix_sha:  # so the interpreter, not the checksum, has to catch it
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["bytes"] = len(data)
    (dst / "model.json").write_text(json.dumps(meta))
    return dst


def other_models_int8(_: bytes) -> bytes:
    d = MODELS / "digits-cnn"
    meta = json.loads((d / "model.json").read_text())
    return (d / meta["variants"]["int8"]["file"]).read_bytes()


CASES: dict[str, tuple[Callable[[bytes], bytes], bool, str]] = {
    "empty": (lambda b: b"", True, "empty"),
    "truncated": (lambda b: b[: len(b) // 3], True, "refused"),
    "truncated-header": (lambda b: b[:10], True, "truncated"),
    "random": (lambda b: os.urandom(len(b)), True, "not a TFLite"),
    "random-with-tfl3-id": (lambda b: os.urandom(4) + b"TFL3" + os.urandom(5000), True, "refused"),
    "wrong-shapes": (other_models_int8, True, "does not match"),
    "sha256-mismatch": (lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), False, "sha256"),
}


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")}
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_clear_line(p: subprocess.CompletedProcess, needle: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr)  # not a signal (a segfault is -11)
    assert "Traceback" not in p.stderr, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("fingercount: error:")]
    assert len(errors) == 1, p.stderr
    assert needle.lower() in errors[0].lower(), errors[0]


@pytest.mark.parametrize("case", list(CASES))
def test_classify_with_a_bad_model_is_one_clear_line(tmp_path: Path, case: str) -> None:
    how, fix_sha, needle = CASES[case]
    pkg = corrupt_package(tmp_path, how, fix_sha)
    p = run_cli("classify", IMAGE, "--model", str(pkg), "--precision", "int8")
    assert_one_clear_line(p, needle)


def test_run_with_a_bad_model_exits_non_zero(tmp_path: Path) -> None:
    pkg = corrupt_package(tmp_path, lambda b: b[: len(b) // 2])
    p = run_cli("run", "--model", str(pkg), "--camera", f"replay:{HANDS}", "--mqtt", "none",
                "--duration", "5", "--state-dir", str(tmp_path / "s"))
    assert_one_clear_line(p, "refused")


def test_bad_model_json(tmp_path: Path) -> None:
    pkg = corrupt_package(tmp_path, lambda b: b)
    (pkg / "model.json").write_text("{ not json")
    assert_one_clear_line(run_cli("classify", IMAGE, "--model", str(pkg)), "not valid JSON")
    assert_one_clear_line(run_cli("classify", IMAGE, "--model", "no-such-model"), "not found")


@pytest.mark.parametrize("field, value, needle", [
    ("labels", None, "'labels' must be a non-empty list"),
    ("labels", ["0", "0", "1", "2", "3", "4"], "duplicates"),
    ("variants", {"int8": "x.tflite"}, "variants.int8 must be"),
    ("input", [96, 96], "bad 'input'"),
    ("retrainable", 3, "'retrainable' must be an object"),
])
def test_a_wrong_field_in_model_json_is_one_line_and_does_not_break_the_others(
        tmp_path: Path, field: str, value: object, needle: str) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS / "fingers-cnn", models / "fingers-cnn")
    corrupt_package(tmp_path, lambda b: b).rename(models / "broken")
    meta = json.loads((models / "broken" / "model.json").read_text())
    meta[field] = value
    (models / "broken" / "model.json").write_text(json.dumps(meta))
    assert_one_clear_line(run_cli("classify", IMAGE, "--models-dir", str(models), "--model", "broken"), needle)
    # The listing names the broken package and still shows the good one; lookups of it still work.
    p = run_cli("models", "--models-dir", str(models))
    assert p.returncode == 1 and "broken: BROKEN" in p.stdout and needle in p.stdout, p.stdout + p.stderr
    assert p.stderr.strip() == "fingercount models: 1 broken, missing or corrupt (marked above)"
    assert f"fingers-cnn {SHIPPED_CNN_VERSION}" in p.stdout
    p = run_cli("classify", IMAGE, "--models-dir", str(models), "--model", "fingers-cnn")
    assert p.returncode == 0 and json.loads(p.stdout)["count"] == 3, p.stderr


def test_models_shows_missing_and_corrupt_files_and_a_copy_is_found_by_its_name(tmp_path: Path) -> None:
    models = tmp_path / "models"
    pkg = corrupt_package(models, lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), fix_sha=False)
    pkg.rename(models / "my-copy")
    meta = json.loads((models / "my-copy" / "model.json").read_text())
    (models / "my-copy" / meta["variants"]["fp16"]["file"]).unlink()
    p = run_cli("models", "--models-dir", str(models))
    assert p.returncode == 1 and "2 broken, missing or corrupt" in p.stderr
    lines = {ln.split()[0]: ln for ln in p.stdout.splitlines() if ln.startswith("  ")}
    assert f"my-copy (fingers-cnn) {SHIPPED_CNN_VERSION}" in p.stdout
    assert lines["int8"].endswith("CORRUPT (does not match its sha256)")
    assert lines["fp16"].endswith("MISSING")
    assert lines["fp32"].endswith("(test, n=147)")
    # --model with the name inside model.json finds the copy in its differently named folder.
    p = run_cli("classify", IMAGE, "--models-dir", str(models), "--model", "fingers-cnn", "--precision", "fp32")
    assert p.returncode == 0 and json.loads(p.stdout)["count"] == 3, p.stderr


def test_a_package_variant_without_sha256_is_refused(tmp_path: Path) -> None:
    pkg = corrupt_package(tmp_path, lambda b: b)
    meta = json.loads((pkg / "model.json").read_text())
    del meta["variants"]["int8"]["sha256"]
    (pkg / "model.json").write_text(json.dumps(meta))
    assert_one_clear_line(run_cli("classify", IMAGE, "--model", str(pkg), "--precision", "int8"), "no sha256")


def test_set_model_to_a_bad_package_keeps_the_old_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.daemon import Daemon
    from tests.test_daemon import daemon_cfg

    models = tmp_path / "models"
    shutil.copytree(model_dir(), models / model_dir().name)
    d = Daemon(daemon_cfg(1, tmp_path / "d", models_dir=str(models)), mqtt_enabled=False)
    old = d.classifier
    for case in ("random-with-tfl3-id", "sha256-mismatch", "wrong-shapes"):
        how, fix_sha, needle = CASES[case]
        pkg = corrupt_package(tmp_path / case, how, fix_sha).rename(models / case)
        res = d.execute("set_model", json.dumps({"id": case, "name": case, "precision": "int8"}).encode())
        assert res["ok"] is False and needle.lower() in res["error"].lower(), res
        assert d.classifier is old
        # over MQTT a model is named, never a path: nobody on the broker picks a file to read
        res = d.execute("set_model", json.dumps({"id": case, "name": str(pkg)}).encode())
        assert res["ok"] is False and "not a path" in res["error"] and d.classifier is old, res
    # nor a file that happens to be in the working directory, nor a home directory
    evil = tmp_path / "cwd" / "evil"
    evil.parent.mkdir()
    shutil.copy(MODELS / "digits-cnn" / "digits-cnn_int8.tflite", evil)
    monkeypatch.chdir(evil.parent)
    for name, why in [("evil", "'evil' not found in"), ("~root", "not a path"),
                      ("x\nCRITICAL forged line", "not a path")]:
        res = d.execute("set_model", json.dumps({"id": name, "name": name}).encode())
        assert res["ok"] is False and why in res["error"] and "\n" not in res["error"], res
        assert d.classifier is old


def test_run_with_a_damaged_retrained_head_keeps_counting(tmp_path: Path) -> None:
    state = tmp_path / "state"
    head = state / "heads" / "fingers-mobilenet" / "head.npz"
    head.parent.mkdir(parents=True)
    head.write_bytes(b"PK\x03\x04" + os.urandom(3000))  # looks like an archive, is not one
    p = run_cli("run", "--model", "fingers-mobilenet", "--camera", f"replay:{HANDS / '3'}@20",
                "--mqtt", "none", "--print", "--duration", "4", "--state-dir", str(state))
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    why = [ln for ln in p.stderr.splitlines() if "ignoring the retrained head" in ln]
    assert len(why) == 1 and "not a valid head file" in why[0], p.stderr
    assert "count 3" in p.stdout, p.stdout  # the shipped model counted the replayed hands


def test_models_marks_a_corrupt_backbone_of_a_retrainable_model(tmp_path: Path) -> None:
    # Counting runs the fused file, so only retrain would find a damaged backbone, too late.
    from tests.test_retrain import RETRAINABLE, models_dir

    models = tmp_path / "models"
    shutil.copytree(models_dir() / RETRAINABLE, models / RETRAINABLE)
    bb = models / RETRAINABLE / "backbone_int8.tflite"
    bb.write_bytes(bb.read_bytes()[:-10])
    p = run_cli("models", "--models-dir", str(models))
    assert p.returncode == 1
    assert "  backbone int8:  CORRUPT (does not match its sha256) (retrain cannot use it)" in p.stdout, p.stdout
    assert "backbone fp32" not in p.stdout and "head:" not in p.stdout


def test_model_json_given_as_the_model_and_labels_on_a_package_say_what_they_do(tmp_path: Path) -> None:
    pkg = corrupt_package(tmp_path, lambda b: b)
    p = run_cli("classify", IMAGE, "--model", str(pkg / "model.json"), "--labels", "a,b,c,d,e,f")
    assert p.returncode == 0 and json.loads(p.stdout)["count"] == 3, p.stderr
    assert "apply to a bare .tflite; fingers-cnn uses the labels in its model.json (0,1,2,3,4,5)" in p.stderr


def test_a_build_left_half_done_is_not_a_model(tmp_path: Path) -> None:
    # An interrupted `fingercount-convert build` leaves OUT/.NAME.building with model.json and
    # .tflite files but no metrics: neither listed nor loaded by the name inside it.
    models = tmp_path / "models"
    shutil.copytree(model_dir(), models / f".{model_dir().name}.building")
    shutil.copytree(MODELS / "digits-cnn", models / "digits-cnn")
    p = run_cli("models", "--models-dir", str(models))
    assert p.returncode == 0 and "digits-cnn" in p.stdout and "building" not in p.stdout, p.stdout
    p = run_cli("classify", IMAGE, "--models-dir", str(models), "--model", "fingers-cnn")
    assert p.returncode == 2 and "not found" in p.stderr and p.stdout == "", p.stderr
