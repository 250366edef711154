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


def _signal_during_build(tmp_path: Path, sig: signal.Signals) -> tuple[int, str]:
    """(exit code, stderr) of a toy build sent sig while its package is being written;
    asserts it ended promptly and left neither the staging folder nor a package."""
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
            p.send_signal(sig)
            t0 = time.monotonic()
            p.wait(timeout=60)
            took = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    err = (tmp_path / "stderr").read_text()
    assert took < 30, took  # promptly
    assert not stage.exists() and not (out / "digits-cnn").exists(), list(out.iterdir())
    return p.returncode, err


@pytest.mark.slow
def test_ctrl_c_during_build_is_one_line_exit_130_and_leaves_nothing(tmp_path: Path) -> None:
    rc, err = _signal_during_build(tmp_path, signal.SIGINT)
    # one line, no traceback, the shell's code for an interrupt
    assert "Traceback" not in err and err.endswith("\n") and \
        err.splitlines()[-1] == "fingercount-convert: interrupted; nothing written", err[-3000:]
    assert rc == 130, rc


@pytest.mark.slow
def test_sigterm_during_build_is_one_line_exit_143_and_leaves_nothing(tmp_path: Path) -> None:
    # kill, systemd or a CI timeout: handled as Ctrl-C, with the shell's code for SIGTERM (128 + 15)
    rc, err = _signal_during_build(tmp_path, signal.SIGTERM)
    assert "Traceback" not in err and err.endswith("\n") and \
        err.splitlines()[-1] == "fingercount-convert: terminated (SIGTERM); nothing written", err[-3000:]
    assert rc == 143, rc
