"""Shared fixtures: a real mosquitto broker on a free loopback port, paths to test data."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

# Tests never touch the network: the converter takes its offline path because it is told to
# (no probe of a download host decides it), in this process and every one a test starts.
os.environ["FINGERCOUNT_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
HANDS = DATA / "hands"
MODELS = ROOT / "models"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if not exe:
        pytest.fail("mosquitto is not installed; the MQTT tests need a real broker: "
                    "sudo apt-get install mosquitto mosquitto-clients (make test does this as root)",
                    pytrace=False)
    return exe


@dataclass
class Broker:
    """A running mosquitto; stop()/start() keep the same port (for outage tests)."""

    conf: Path
    port: int
    log: Path
    host: str = "127.0.0.1"
    proc: Optional[subprocess.Popen] = field(default=None, repr=False)

    def start(self) -> None:
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def make_broker(tmp: Path, extra_conf: str = "", port: Optional[int] = None) -> Broker:
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "persistence false\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
        + ("allow_anonymous true\n" if "allow_anonymous" not in extra_conf else "")
        + extra_conf
    )
    return Broker(conf=conf, port=port, log=tmp / "mosquitto.log")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A plain anonymous mosquitto on a free port, stopped after the test."""
    b = make_broker(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator:
    """make(extra_conf) -> started Broker; for TLS / password / outage tests."""
    made: list[Broker] = []

    def make(extra_conf: str = "", name: str = "b") -> Broker:
        b = make_broker(tmp_path / f"broker-{name}-{len(made)}", extra_conf)
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


# ---- a real full filesystem (tmpfs; needs root) -------------------------------------------

def mount_tmpfs(path: Path, size: str) -> bool:
    """Mount a tmpfs of `size` at path; False where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at path for the with-block."""
    if not mount_tmpfs(path, size):
        pytest.fail("cannot mount a tmpfs here (needs root and mount permission)")
    try:
        yield path
    finally:
        umount(path)


def fill_filesystem(path: Path, name: str = "filler") -> Path:
    """Write zeros into path/name until the filesystem refuses (ENOSPC)."""
    target = path / name
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return target


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """As in gpiozero's tests/conftest.py: a MockFactory for the test, the old factory restored."""
    saved = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = saved


def wait_until(pred: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll pred until it returns something truthy (returned) or timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return None
