"""An interrupted or failed `fingercount-convert build` leaves no staging folder behind
(a device must never load a half-written package)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from converter import package as pkgw
from tests.conftest import ROOT


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), ValueError("a failed conversion")])
def test_a_failed_or_interrupted_stage_is_removed(tmp_path: Path, exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        with pkgw.staging(tmp_path, "m") as stage:
            assert stage == tmp_path / ".m.building"
            (stage / "model.json").write_text("{}\n")
            (stage / "m_int8.tflite").write_bytes(b"half a model")
            raise exc
    assert list(tmp_path.iterdir()) == []


def test_a_complete_build_that_cannot_be_published_stays_for_inspection(tmp_path: Path) -> None:
    with pytest.raises(pkgw.PublishConflict, match=r"already exists.*this build is in"):
        with pkgw.staging(tmp_path, "m") as stage:
            (stage / "model.json").write_text("{}\n")
            (tmp_path / "m").mkdir()  # made meanwhile, by someone else
            pkgw.publish(stage, tmp_path, "m")
    assert (tmp_path / ".m.building" / "model.json").is_file()


def _reset_sigint() -> None:
    # a background job (`make test &`) inherits SIGINT ignored; Ctrl-C at a terminal is not
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_during_build_is_one_line_exit_130_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stage = out / ".digits-cnn.building"
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:
        p = subprocess.Popen([sys.executable, "-m", "converter.cli", "build",
                              str(ROOT / "converter" / "recipes" / "digits-cnn.yaml"), "--toy",
                              "--out", str(out)], cwd=ROOT, stdout=so, stderr=se,
                             preexec_fn=_reset_sigint)
        try:
            deadline = time.monotonic() + 300
            while not stage.is_dir():  # training done, the package is being written
                assert p.poll() is None, (tmp_path / "stderr").read_text()[-3000:]
                assert time.monotonic() < deadline
                time.sleep(0.01)
            p.send_signal(signal.SIGINT)
            t0 = time.monotonic()
            p.wait(timeout=60)
            took = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    err = (tmp_path / "stderr").read_text()
    # one line, no traceback, the shell's code for an interrupt, promptly
    assert "Traceback" not in err and err.endswith("\nfingercount-convert: interrupted; nothing written\n"), \
        err[-3000:]
    assert p.returncode == 130 and took < 30, (p.returncode, took)
    assert not stage.exists() and not (out / "digits-cnn").exists(), list(out.iterdir())
