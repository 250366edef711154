"""What a first run prints, said once where it matters: no runtime banner on every command, no
GPIO warning on a machine without GPIO, no packaging deprecation banners, a demo that replays
only finger counts."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge.camera.replay import list_images
from tests.conftest import HANDS, ROOT

BANNER = "Created TensorFlow Lite XNNPACK delegate for CPU"


def _edge(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")}
    env["FINGERCOUNT_GPIO__ENABLED"] = "false"
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_commands_do_not_print_the_runtime_banner(tmp_path: Path) -> None:
    img = str(sorted((HANDS / "3").glob("*.JPG"))[0])
    p = _edge("classify", img, "--model", "fingers-cnn", "--state-dir", str(tmp_path))
    assert p.returncode == 0 and BANNER not in p.stderr, p.stderr
    assert p.stderr == "", p.stderr  # nothing else either: a clean classify is silent on stderr


def test_only_the_banner_is_held_back_the_rest_of_stderr_goes_through() -> None:
    # the C++ runtime writes to fd 2 directly; so does this child, inside the filter
    code = ("import os\nfrom edge.runtime import interpreter as i\n"
            "with i._without_runtime_banner():\n"
            f"    os.write(2, b'INFO: {BANNER}.\\nERROR: a real problem\\n')\n"
            "print('done', flush=True)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.stdout == "done\n" and p.stderr == "ERROR: a real problem\n", p.stderr


@pytest.mark.parametrize("chips, level", [(False, logging.INFO), (True, logging.WARNING)])
def test_no_gpio_is_information_on_a_pc_and_a_warning_on_a_board(chips: bool, level: int, tmp_path: Path,
                                                                  monkeypatch, caplog) -> None:
    from gpiozero import Device

    import edge.gpio as gpio
    from edge.config import GPIOSection

    if chips:  # a board: GPIO character devices exist, yet no pin library could drive them
        (tmp_path / "gpiochip0").write_text("")
    monkeypatch.setattr(gpio, "GPIO_CHIPS", str(tmp_path / "gpiochip*"))
    monkeypatch.setattr(Device, "pin_factory", None)  # gpiozero looks for a real one, as in `run`
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with caplog.at_level(logging.DEBUG, logger="edge.gpio"):
        assert gpio.open_controls(GPIOSection(), labels=lambda: ["0", "1"],
                                  on_capture=lambda: None, on_retrain=lambda: None) is None
    recs = [r for r in caplog.records if r.name == "edge.gpio"]
    assert [(r.levelno, "no GPIO on this machine" in r.getMessage()) for r in recs] == [(level, True)]


def test_the_package_metadata_builds_without_licence_banners_on_old_and_new_setuptools() -> None:
    # `license = {text = …}` made setuptools >= 77 print a deprecation banner three times per
    # install; `license = "Apache-2.0"` (PEP 639) is refused by setuptools < 77, which offline
    # --no-build-isolation installs on Debian bookworm use (test_systemd's staging install).
    text = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r"^license\s*=", text, re.M) and "license-files" not in text
    assert "Apache-2.0" in (ROOT / "README.md").read_text()


def test_make_demo_installs_no_tensorflow_and_replays_only_finger_counts() -> None:
    # what `make demo` would run on a fresh clone (make -n: printed, not run)
    p = subprocess.run(["make", "-n", "demo", "DEMO_VENV=.venv-demo-never-made"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    installs = [ln for ln in p.stdout.splitlines() if " install " in ln]
    assert installs and all(re.search(r'-e "\.\[edge,demo\]"$', ln) for ln in installs), installs
    assert "converter" not in p.stdout and ".venv-demo-never-made/bin/fingercount run" in p.stdout
    spec = re.search(r"fingercount run --camera replay:(\S+?)@\d+", p.stdout).group(1)
    images = list_images(ROOT / spec)
    assert images and {p.parent.name for p in images} == {"0", "1", "2", "3", "4", "5"}
    assert len(images) == len(list_images(HANDS)) - sum(len(list_images(HANDS / c)) for c in "6789")
