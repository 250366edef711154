"""sd_notify against a real unix datagram socket (path and abstract), without systemd."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from edge.sdnotify import Notifier, watchdog_usec_from


def _receiver(address: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + address[1:] if address.startswith("@") else address)
    s.settimeout(2)
    return s


def test_path_socket_gets_ready_status_watchdog_stopping(tmp_path: Path) -> None:
    addr = str(tmp_path / "notify.sock")
    rx = _receiver(addr)
    n = Notifier(addr)
    assert n.enabled
    assert n.ready("model fingers-mobilenet@1/int8")
    msg = rx.recv(4096).decode()
    assert msg.splitlines()[0] == "READY=1"
    assert f"MAINPID={os.getpid()}" in msg and "STATUS=model fingers-mobilenet@1/int8" in msg
    assert n.watchdog() and rx.recv(4096) == b"WATCHDOG=1"
    assert n.extend_timeout(2.5) and rx.recv(4096) == b"EXTEND_TIMEOUT_USEC=2500000"
    assert n.stopping() and rx.recv(4096) == b"STOPPING=1"
    n.close()
    assert not n.watchdog()
    rx.close()


def test_abstract_socket(tmp_path: Path) -> None:
    addr = f"@fingercount-test-{os.getpid()}-{time.monotonic_ns()}"
    rx = _receiver(addr)
    n = Notifier(addr)
    assert n.ready() and rx.recv(4096).startswith(b"READY=1")
    rx.close()
    n.close()


def test_without_socket_everything_is_a_quiet_no_op(tmp_path: Path) -> None:
    for addr in (None, "", "vsock:2:1234"):
        n = Notifier(addr)
        assert not n.enabled and not n.ready() and not n.watchdog_ping()
    # A socket path nobody listens on (systemd gone): False, no exception.
    n = Notifier(str(tmp_path / "nobody.sock"))
    assert n.enabled and not n.ready()


def test_a_full_manager_queue_never_blocks_the_sender(tmp_path: Path) -> None:
    addr = str(tmp_path / "full.sock")
    rx = _receiver(addr)  # never read: its queue fills up
    n = Notifier(addr)
    t0 = time.monotonic()
    sent = [n.watchdog() for _ in range(5000)]
    assert time.monotonic() - t0 < 2.0
    assert sent[0] and not all(sent), "the queue never filled; the test proves nothing"
    rx.close()


def test_watchdog_usec_honours_watchdog_pid() -> None:
    me = os.getpid()
    assert watchdog_usec_from({"WATCHDOG_USEC": "4000000"}) == 4_000_000
    assert watchdog_usec_from({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(me)}) == 4_000_000
    assert watchdog_usec_from({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(me + 1)}) is None
    for bad in ({}, {"WATCHDOG_USEC": "0"}, {"WATCHDOG_USEC": "soon"},
                {"WATCHDOG_USEC": "-5"}, {"WATCHDOG_USEC": "100", "WATCHDOG_PID": "x"}):
        assert watchdog_usec_from(bad) is None, bad


def test_from_env_and_rate_limited_ping(tmp_path: Path, monkeypatch) -> None:
    addr = str(tmp_path / "wd.sock")
    rx = _receiver(addr)
    monkeypatch.setenv("NOTIFY_SOCKET", addr)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # 0.4 s: ping at most every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    n = Notifier.from_env(unset=True)
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
    assert n.watchdog_interval() == 0.2
    rx.settimeout(0.05)
    pings = 0
    t_end = time.monotonic() + 0.5
    while time.monotonic() < t_end:  # "frames" at ~1 kHz
        if n.watchdog_ping():
            pings += 1
        time.sleep(0.001)
    got = 0
    try:
        while rx.recv(64) == b"WATCHDOG=1":
            got += 1
    except TimeoutError:
        pass
    assert got == pings and 3 <= pings <= 7, pings
    rx.close()
