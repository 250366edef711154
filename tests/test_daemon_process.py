"""The daemon as a process, as systemd runs it: SIGTERM / Ctrl-C end it cleanly with
`offline` within 2 s, kill -9 leaves `offline` through the last will, and memory with the
shipped int8 fingers-mobilenet stays within budget (start-up time is printed, not asserted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.conftest import HANDS, MODELS, ROOT
from tests.test_mqtt import Collector
from tests.test_pipeline import model_dir


def start_daemon(port: int, tmp: Path, device: str, model: Path, *extra: str,
                 stderr: Any = subprocess.PIPE, env: Optional[dict[str, str]] = None) -> subprocess.Popen:
    """The daemon on the replayed hands (a later --camera in extra replaces it); env adds
    settings (FINGERCOUNT_...)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FINGERCOUNT_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env = {**base, "FINGERCOUNT_GPIO__ENABLED": "false", "FINGERCOUNT_MODEL__THREADS": "2",
           "FINGERCOUNT_PUBLISH__STATS_INTERVAL_S": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "edge", "run", "--camera", f"replay:{HANDS}@15", "--mqtt", f"127.0.0.1:{port}",
           "--device-id", device, "--model", str(model), "--precision", "int8",
           "--state-dir", str(tmp / "state"), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)


def stop_daemon(p: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
    """Send sig, wait for the exit: (return code, seconds it took); killed (-9) past timeout."""
    t0 = time.monotonic()
    p.send_signal(sig)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    return rc, time.monotonic() - t0


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_cleanly_with_offline_within_2_s(broker, tmp_path: Path, sig: int) -> None:
    dev = f"sig{int(sig)}"
    sub = Collector(broker.port, [f"fingercount/{dev}/#"])
    p = start_daemon(broker.port, tmp_path, dev, model_dir())
    try:
        sub.wait(lambda: sub.on(f"fingercount/{dev}/prediction"), timeout=30, what="first prediction")
        rc, took = stop_daemon(p, sig, 5)
    finally:
        if p.poll() is None:
            p.kill()
    out, err = p.communicate()
    assert rc == 0, err
    assert took <= 2.0, f"took {took:.2f} s to stop"  # README's promise; 0.3-0.5 s under load
    assert "Traceback" not in err, err
    sub.wait(lambda: sub.on(f"fingercount/{dev}/availability")[-1:] == [b"offline"], what="offline")
    sub.close()


def test_kill_9_leaves_offline_through_the_last_will(broker, tmp_path: Path) -> None:
    dev = "k9"
    sub = Collector(broker.port, [f"fingercount/{dev}/availability"])
    p = start_daemon(broker.port, tmp_path, dev, model_dir())
    try:
        sub.wait(lambda: sub.on(f"fingercount/{dev}/availability")[-1:] == [b"online"], timeout=30, what="online")
        p.send_signal(signal.SIGKILL)
        p.wait(5)
    finally:
        if p.poll() is None:
            p.kill()
    sub.wait(lambda: sub.on(f"fingercount/{dev}/availability")[-1:] == [b"offline"], timeout=10,
             what="offline (last will)")
    sub.close()


def test_steady_state_rss_within_150_mb(broker, tmp_path: Path) -> None:
    mobilenet = MODELS / "fingers-mobilenet"
    if not (mobilenet / "model.json").is_file():
        pytest.fail(f"{mobilenet} is missing: build it with `make models`", pytrace=False)
    dev = "perf"
    sub = Collector(broker.port, [f"fingercount/{dev}/prediction"])
    t0 = time.monotonic()
    # the whole-frame MobileNet (the default counter, behind the hand stage, is measured in the notes)
    p = start_daemon(broker.port, tmp_path, dev, mobilenet, env={"FINGERCOUNT_HANDS__ENABLED": "false"})
    try:
        sub.wait(lambda: sub.on(f"fingercount/{dev}/prediction"), timeout=30, what="first prediction")
        first = time.monotonic() - t0
        time.sleep(3)  # steady state: buffers, stats, a few hundred frames
        rss = max(vm_rss_mb(p.pid) for _ in range(3) if time.sleep(0.2) is None)
        p.send_signal(signal.SIGTERM)
        p.wait(5)
    finally:
        if p.poll() is None:
            p.kill()
    sub.close()
    # The start-up time is a figure (printed; 0.6-1.4 s here), not a timed assertion: under a
    # busy CI host it measured 3.3 s once, and the brief keeps speed in benchmarks.
    print(f"start -> first prediction {first:.2f} s, RSS {rss:.0f} MB (fingers-mobilenet int8)")
    assert rss <= 150, f"RSS {rss:.0f} MB"
