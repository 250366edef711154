"""`fingercount classify`, `models` and `run --print` as a user calls them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import HANDS, MODELS, ROOT
from tests.test_pipeline import model_dir


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")}
    env["FINGERCOUNT_GPIO__ENABLED"] = "false"
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_classify_prints_one_json_per_image() -> None:
    imgs = [str(sorted((HANDS / lab).glob("*.JPG"))[0]) for lab in ("0", "3", "5")]
    p = cli("classify", *imgs, "--model", str(model_dir()), "--precision", "int8")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert [r["image"] for r in lines] == imgs
    for r in lines:
        assert r["label"] in r["scores"] and abs(sum(r["scores"].values()) - 1) < 0.02
        assert r["confidence"] == max(r["scores"].values())
        assert r["count"] == (int(r["label"]) if r["label"] in "012345" else None)
        assert r["model"].endswith("/int8") and r["timing_ms"]["invoke"] > 0


def test_classify_an_unreadable_image_is_one_line_and_the_others_still_go(tmp_path: Path) -> None:
    bad = tmp_path / "not-an-image.jpg"
    bad.write_text("hello")
    good = str(sorted((HANDS / "2").glob("*.JPG"))[0])
    missing = tmp_path / "missing.jpg"
    p = cli("classify", str(bad), good, str(missing), str(tmp_path), "--model", str(model_dir()))
    assert p.returncode == 2
    assert len(p.stdout.splitlines()) == 1 and json.loads(p.stdout)["image"] == good
    assert f"fingercount: error: {bad}: not a readable image" in p.stderr
    assert f"fingercount: error: {missing}: no such file" in p.stderr
    assert f"fingercount: error: {tmp_path}: a directory" in p.stderr
    assert "Traceback" not in p.stderr and "WARN" not in p.stderr  # no OpenCV lines beside ours


def test_models_lists_variants_with_bytes_and_metrics() -> None:
    p = cli("models", "--models-dir", str(MODELS))
    assert p.returncode == 0, p.stderr
    for d in sorted(MODELS.iterdir()):
        if not (d / "model.json").is_file():
            continue
        meta = json.loads((d / "model.json").read_text())
        assert f"{meta['name']} {meta['version']}" in p.stdout
        for prec, v in meta["variants"].items():
            assert f"{v['bytes']:,} bytes" in p.stdout, (prec, v)
            acc = meta.get("metrics", {}).get(prec, {}).get("accuracy")
            if acc is not None:
                assert f"accuracy {acc:.3f}" in p.stdout


def test_models_with_no_models_says_so(tmp_path: Path) -> None:
    p = cli("models", "--models-dir", str(tmp_path))
    assert p.returncode == 2 and p.stderr.startswith("fingercount: error: no models in")
    p = cli("models", "--models-dir", str(tmp_path / "absent"))
    assert p.returncode == 2 and "absent does not exist" in p.stderr


def test_models_output_piped_into_head_ends_quietly() -> None:
    p = subprocess.run(f"{sys.executable} -m edge models | head -1", shell=True, capture_output=True,
                       text=True, timeout=60)
    assert p.stdout.startswith("models in") and "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr


def test_run_print_shows_count_changes_without_a_broker(tmp_path: Path) -> None:
    env_over = ["--state-dir", str(tmp_path / "s")]
    p = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--camera", f"replay:{HANDS}@30", "--mqtt", "none",
         "--model", str(model_dir()), "--print", "--duration", "3", *env_over],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")},
             "FINGERCOUNT_GPIO__ENABLED": "false", "FINGERCOUNT_SMOOTHING__MIN_CONFIDENCE": "0",
             "FINGERCOUNT_SMOOTHING__MIN_HOLD_MS": "0", "FINGERCOUNT_SMOOTHING__WINDOW": "1"})
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if " count " in ln and "frame " in ln]
    assert lines, p.stdout + p.stderr
    frames = [int(ln.rsplit("frame ", 1)[1].rstrip(")")) for ln in lines]
    assert frames == sorted(set(frames))


def test_unknown_camera_is_one_clear_line(tmp_path: Path) -> None:
    p = cli("run", "--camera", "webcam:0", "--mqtt", "none", "--model", str(model_dir()),
            "--state-dir", str(tmp_path))
    assert p.returncode == 2 and "fingercount: error: unknown camera 'webcam:0'" in p.stderr


def test_run_with_a_camera_that_never_opened_exits_nonzero_and_says_so(tmp_path: Path) -> None:
    p = cli("run", "--camera", f"replay:{tmp_path / 'nothing-here'}", "--mqtt", "none", "--model",
            str(model_dir()), "--state-dir", str(tmp_path / "state"), "--duration", "2")
    assert p.returncode == 2, p.stderr
    last = p.stderr.splitlines()[-1]
    assert last.startswith(f"fingercount: error: no frame was classified in 2 s: the camera replay:"
                           f"{tmp_path / 'nothing-here'}") and "never opened" in last, p.stderr
    assert "does not exist" in last or "neither a folder" in last, last


def test_run_print_says_once_what_unsure_means(tmp_path: Path) -> None:
    p = cli("run", "--camera", f"replay:{HANDS}@8", "--mqtt", "none", "--model", str(model_dir()),
            "--state-dir", str(tmp_path / "state"), "--print", "--duration", "3")
    assert p.returncode == 0, p.stderr
    legend = [ln for ln in p.stdout.splitlines() if "'count unsure'" in ln]
    assert legend == ["('no hand': no hand in view; 'count unsure': a hand, but the mean confidence of "
                      "the last 5 frames is under 60%, as while the hand changes)"], p.stdout
