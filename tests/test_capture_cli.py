"""`fingercount capture | samples | retrain | rollback` end to end (real replay camera, model, files)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge.cli import main
from edge.samples import SampleStore
from tests.conftest import HANDS, ROOT, fill_filesystem, small_disk
from tests.test_retrain import RETRAINABLE, models_dir
from tests.test_samples import files_of, lost_index_on_a_nearly_full_disk, raw_state


def cli(tmp: Path, *argv: str) -> int:
    name = os.environ.get("FC_TEST_RETRAINABLE", RETRAINABLE)
    return main([argv[0], "--state-dir", str(tmp / "state"), "--models-dir", str(models_dir()),
                 *argv[1:], *(["--model", name] if argv[0] in ("capture", "retrain", "rollback") else [])])


def test_capture_samples_retrain_rollback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for lab in "012345":
        assert cli(tmp_path, "capture", "--label", lab, "--count", "4", "--interval", "0",
                   "--camera", f"replay:{HANDS / lab}@0") == 0
    other = tmp_path / "other-signs"  # signs 6 and 7 stand in for "no finger count"
    other.mkdir()
    for p in [*(HANDS / "6").glob("*.JPG"), *(HANDS / "7").glob("*.JPG")]:
        shutil.copy(p, other / f"{p.parent.name}-{p.name}")
    assert cli(tmp_path, "capture", "--label", "none", "--count", "4", "--interval", "0",
               "--camera", f"replay:{other}@0") == 0
    out = capsys.readouterr().out
    assert "stored 4 sample(s) under 'none'" in out
    with SampleStore(tmp_path / "state") as store:
        assert store.counts() == {**{lab: 4 for lab in "012345"}, "none": 4}
        # each capture took a fresh frame: 4 different pictures per label
        assert len({s.sha256 for s in store.list("3")}) == 4

    assert cli(tmp_path, "samples", "stats", "--json") == 0
    st = json.loads(capsys.readouterr().out)
    assert st["total"] == 28 and st["per_label"]["none"] == 4
    assert cli(tmp_path, "samples", "list", "--json", "--label", "2") == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4 and {r["label"] for r in rows} == {"2"} and all(Path(r["path"]).is_file() for r in rows)
    assert cli(tmp_path, "samples", "export", str(tmp_path / "ds")) == 0
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["0", "1", "2", "3", "4", "5", "none"]
    assert all(cv2.imread(str(p)) is not None for p in (tmp_path / "ds").glob("*/*.jpg"))

    assert cli(tmp_path, "retrain", "--json", str(tmp_path / "r.json")) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["swapped"] and "none" in res["labels"] and res["embeddings_computed"] == 28
    assert res["accuracy_after"] >= res["accuracy_before"]
    assert "swapped in" in capsys.readouterr().out
    assert cli(tmp_path, "rollback") == 0
    assert "shipped head" in capsys.readouterr().out

    assert cli(tmp_path, "samples", "remove") == 2  # never everything by accident
    assert "needs --label" in capsys.readouterr().err
    assert cli(tmp_path, "samples", "remove", "--label", "none", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["removed"] == 4 and out["samples"] == {lab: 4 for lab in "012345"}
    assert not (tmp_path / "state" / "samples" / "none").exists()


def test_bad_labels_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cam = f"replay:{HANDS / '3'}@0"
    for bad in ["a/b", "", "../x", "x" * 40, "a.b"]:
        assert cli(tmp_path, "capture", "--label", bad, "--camera", cam) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fingercount: error: "), err
    assert cli(tmp_path, "samples", "export") == 2
    assert "needs a target directory" in capsys.readouterr().err
    assert cli(tmp_path, "rollback") == 2
    assert "nothing to roll back" in capsys.readouterr().err
    assert cli(tmp_path, "retrain") == 2
    assert "no samples" in capsys.readouterr().err


def test_a_label_ending_in_a_newline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cam = f"replay:{HANDS / '4'}@0"
    assert cli(tmp_path, "capture", "--label", "4\n", "--camera", cam) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0] == ("fingercount: error: label '4\\n' may only contain letters, "
                                        "digits, '_' and '-' (and may not start with '-')"), err
    assert not (tmp_path / "state" / "samples" / "4\n").exists()


def test_capture_on_a_full_disk_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINGERCOUNT_SAMPLES__MIN_FREE_MB", "0")  # the disk itself refuses here
    with small_disk(tmp_path / "small", "2m") as mnt:
        state = mnt / "state"
        cam = f"replay:{HANDS / '2'}@0"
        args = ["--state-dir", str(state), "--models-dir", str(models_dir()),
                "--model", os.environ.get("FC_TEST_RETRAINABLE", RETRAINABLE)]
        assert main(["capture", "--label", "2", "--camera", cam, *args]) == 0
        fill_filesystem(mnt)  # take every remaining block
        capsys.readouterr()
        assert main(["capture", "--label", "2", "--camera", cam, *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("fingercount: error: ") and "disk full" in err, err
        (mnt / "filler").unlink()  # room for sqlite to read the index (it needs its -shm file)
        rows, finals, temps = raw_state(state)
        assert temps == [] and set(rows) == set(finals) and len(rows) == 1


def test_samples_from_a_rotated_camera_are_stored_upright(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wide = tmp_path / "wide"
    wide.mkdir()
    img = cv2.resize(cv2.imread(str(next((HANDS / "2").glob("*.JPG")))), (160, 120))
    cv2.imwrite(str(wide / "a.png"), img)
    monkeypatch.setenv("FINGERCOUNT_CAMERA__ROTATE", "270")
    assert cli(tmp_path, "capture", "--label", "2", "--camera", f"replay:{wide}@0") == 0
    with SampleStore(tmp_path / "state") as store:
        (s,) = store.list()
    stored = cv2.imread(str(s.path))
    assert stored.shape == (160, 120, 3)  # turned a quarter anticlockwise: 160 high, 120 wide
    expected = cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE).astype(int)
    assert abs(stored.astype(int) - expected).mean() < 3  # JPEG round trip


def test_a_store_that_cannot_be_repaired_is_one_line_and_run_still_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """D1 from the command line: `samples stats` / `samples remove` print one line (exit 2)
    instead of sqlite3's traceback, and `run` counts instead of exiting 1 at start."""
    with small_disk(tmp_path / "small", "24m") as mnt:
        state, filler = lost_index_on_a_nearly_full_disk(mnt, "2", 4000, 256 << 10)
        kept = files_of(state)
        args = ["--state-dir", str(state), "--models-dir", str(models_dir())]
        for argv in (["samples", "stats"], ["samples", "remove", "--label", "3"]):
            assert main([*argv, *args]) == 2
            err = capsys.readouterr().err.splitlines()
            assert len(err) == 1 and err[0].startswith(
                f"fingercount: error: cannot open the sample store in {state}: disk full"), err
        p = subprocess.run([sys.executable, "-m", "edge", "run", *args, "--camera", f"replay:{HANDS / '2'}@15",
                            "--mqtt", "none", "--print", "--duration", "3",
                            "--model", os.environ.get("FC_TEST_RETRAINABLE", RETRAINABLE)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")})
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        assert "counting goes on" in p.stderr and "count 2" in p.stdout, (p.stdout, p.stderr)
        assert files_of(state) == kept  # nothing stored was lost
        filler.unlink()
        assert main(["samples", "stats", "--json", *args]) == 0
        assert json.loads(capsys.readouterr().out)["per_label"] == {"2": 4000}


def test_retrain_json_is_written_when_retrain_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.json"
    assert cli(tmp_path, "retrain", "--json", str(out)) == 2
    err = capsys.readouterr().err.strip()
    res = json.loads(out.read_text())
    assert res["ok"] is False and res["swapped"] is False and res["model"] == RETRAINABLE
    assert err == f"fingercount: error: {res['reason']}" and "no samples" in res["reason"]


def test_a_negative_capture_interval_is_refused_by_the_parser(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    for bad in ("-1", "nan", "inf", "soon"):
        with pytest.raises(SystemExit) as exited:
            cli(tmp_path, "capture", "--label", "2", "--interval", bad, "--camera", f"replay:{HANDS / '2'}@0")
        assert exited.value.code == 2
        assert "argument --interval: " in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "state" / "samples").exists()  # refused before anything ran
    assert cli(tmp_path, "capture", "--label", "2", "--interval", "0", "--count", "2",
               "--camera", f"replay:{HANDS / '2'}@0") == 0


def test_rollback_of_a_model_that_cannot_be_retrained_says_so(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["rollback", "--state-dir", str(tmp_path / "state"), "--models-dir", str(models_dir()),
                 "--model", "fingers-cnn"]) == 2
    assert "fingers-cnn cannot be retrained" in capsys.readouterr().err


def test_what_a_capture_stores_is_not_readable_by_other_users(tmp_path: Path) -> None:
    # photos of people's hands: run by hand with the usual umask 022 they were 0644 in 0755 folders
    p = subprocess.run(["sh", "-c", 'umask 022 && exec "$0" -m edge capture --label 3 --count 2 '
                        '--camera "$1" --state-dir "$2"', sys.executable, f"replay:{HANDS / '3'}@0",
                        str(tmp_path / "state")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    made = [tmp_path / "state", *(tmp_path / "state").rglob("*")]
    assert len([f for f in made if f.suffix == ".jpg"]) == 2
    assert {oct(f.stat().st_mode & 0o007) for f in made} == {"0o0"}, [(f, oct(f.stat().st_mode)) for f in made]


def test_a_camera_password_is_masked_in_what_the_command_line_prints(tmp_path: Path) -> None:
    src = "opencv:rtsp://admin:S3cretPw@127.0.0.1:9/stream"  # refused at once
    p = subprocess.run([sys.executable, "-m", "edge", "capture", "--label", "1", "--camera", src,
                        "--state-dir", str(tmp_path / "state"), "--models-dir", str(models_dir())],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "FINGERCOUNT_CAMERA__STALL_S": "1"})
    assert p.returncode == 2 and "admin:***@" in p.stderr, p.stderr
    assert "S3cretPw" not in p.stderr + p.stdout, p.stderr
