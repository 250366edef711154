"""Signals the daemon does not use (SIGHUP, SIGUSR1, SIGUSR2) are logged and ignored: their
default action killed it, and systemd does not restart a service that died of SIGHUP."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.conftest import wait_until
from tests.test_daemon_process import start_daemon, stop_daemon
from tests.test_mqtt import Collector
from tests.test_pipeline import model_dir


def test_sighup_sigusr1_sigusr2_are_logged_and_ignored(broker, tmp_path: Path) -> None:
    dev = "hup"
    sub = Collector(broker.port, [f"fingercount/{dev}/#"])
    log = tmp_path / "daemon.log"
    with open(log, "w") as err:
        p = start_daemon(broker.port, tmp_path, dev, model_dir(), stderr=err)
    try:
        sub.wait(lambda: sub.on(f"fingercount/{dev}/prediction"), timeout=30, what="first prediction")
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            said = f"{sig.name} ignored"
            p.send_signal(sig)
            wait_until(lambda s=said: s in log.read_text() or p.poll() is not None, 10)
            assert p.poll() is None, f"{sig.name} ended the daemon with {p.returncode}"
            assert said in log.read_text(), log.read_text()
        text = log.read_text()
        assert "configuration is read at start" in text and "restart the service" in text
        # still counting, still online
        seen = len(sub.on(f"fingercount/{dev}/prediction"))
        sub.wait(lambda: len(sub.on(f"fingercount/{dev}/prediction")) > seen + 3, 10, "predictions after")
        assert sub.on(f"fingercount/{dev}/availability")[-1:] == [b"online"]
        assert stop_daemon(p)[0] == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "stopping (SIGTERM)" in text and text.rstrip().endswith("stopped"), text[-500:]
    sub.wait(lambda: sub.on(f"fingercount/{dev}/availability")[-1:] == [b"offline"], what="offline")
    sub.close()
