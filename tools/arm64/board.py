"""Commands on the arm64 board (chroot through qemu-user) and on the x86 host, for checks.py.

Each command runs in its own process group, to its end or its timeout; its output is read
from files and its CPU time (with everything it waited for) is kept: on a shared machine
wall time says little, CPU seconds say what the run costs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

VENV = "/opt/fc-venv"        # inside: the venv of the edge extra + fingercount
MODELS = "/src/models"       # inside: the checkout's models (copied in)
STATE = "/tmp/state"
EMPTY_CONFIG = "tools/arm64/empty.yaml"  # no /etc/fingercount of the host is read

_children: list[subprocess.Popen] = []


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    """Each command runs in its own process group: install.sh's pip goes with install.sh."""
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _running(p: subprocess.Popen) -> bool:
    """Reaps it if it ended (this handler runs on the main thread, whose wait is suspended)."""
    try:
        return os.waitpid(p.pid, os.WNOHANG)[0] == 0
    except ChildProcessError:  # already reaped (by the thread that ran it)
        return False


def on_term(signum: int, _frame: Any) -> None:
    """SIGTERM from run.sh (Ctrl-C or TERM there): stop what runs inside, then exit."""
    for p in list(_children):
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_running(p) for p in list(_children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in list(_children):
        _signal_group(p, signal.SIGKILL)
    print("arm64: checks stopped by a signal", flush=True)
    os._exit(128 + signum)


class Result:
    def __init__(self, rc: int, out: str, err: str, seconds: float, cpu: float):
        self.rc, self.out, self.err, self.seconds, self.cpu = rc, out, err, seconds, cpu

    def tail(self, n: int = 6) -> str:
        lines = (self.err or self.out).strip().splitlines()
        return " | ".join(lines[-n:])


# CPU seconds of the commands each thread ran: unlike wall time, not inflated by other load.
cpu_seconds = threading.local()


def run(argv: list[str], env: dict[str, str], timeout: float, cwd: Optional[str] = None) -> Result:
    """Run a command to its end (TERM at the timeout, KILL 10 s later); output from files,
    and the CPU time of the command and everything it waited for (os.wait4)."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=fo, stderr=fe, text=True,
                             start_new_session=True)
        _children.append(p)
        deadline, note = t0 + timeout, ""
        try:
            while True:
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    if not note:
                        _signal_group(p, signal.SIGTERM)
                        note, deadline = f"\n(timed out after {timeout:.0f} s)", deadline + 10
                    else:
                        _signal_group(p, signal.SIGKILL)
                time.sleep(0.05)
        finally:
            _children.remove(p)
        p.returncode = os.waitstatus_to_exitcode(status)
        _signal_group(p, signal.SIGKILL)  # nothing of it outlives it (a daemon's stray child)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read() + note
    cpu = usage.ru_utime + usage.ru_stime
    cpu_seconds.total = getattr(cpu_seconds, "total", 0.0) + cpu
    return Result(p.returncode, out, err, time.monotonic() - t0, cpu)


class Board:
    """Commands inside the arm64 root filesystem, with the environment a Pi 4 would show."""

    def __init__(self, root: Path, qemu_cpu: str, qemu_version: str):
        self.root = root
        self.env = {
            "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
            "QEMU_CPU": qemu_cpu,  # read by qemu-user (binfmt): the CPU it emulates
            "FINGERCOUNT_EMULATED": f"{qemu_version.split('(')[0].strip()}, -cpu {qemu_cpu}",
            "FINGERCOUNT_MODELS_DIR": MODELS, "FINGERCOUNT_STATE_DIR": STATE,
        }

    def sh(self, argv: list[str], timeout: float = 300, env: Optional[dict[str, str]] = None,
           drop: tuple[str, ...] = ()) -> Result:
        e = {k: v for k, v in {**self.env, **(env or {})}.items() if k not in drop}
        return run(["chroot", str(self.root), *argv], e, timeout)

    def fc(self, *args: str, timeout: float = 300, env: Optional[dict[str, str]] = None) -> Result:
        return self.sh([f"{VENV}/bin/fingercount", "--config", f"/src/{EMPTY_CONFIG}", *args],
                       timeout, env)


class Host:
    """The same commands on x86, from this checkout, in the developer venv."""

    def __init__(self, src: Path, work: Path):
        self.src = src
        self.state = work / "x86-state"
        self.env = {**os.environ, "PYTHONPATH": str(src), "FINGERCOUNT_MODELS_DIR": str(src / "models"),
                    "FINGERCOUNT_STATE_DIR": str(self.state)}
        for k in [k for k in self.env if k.startswith("FINGERCOUNT_") and k not in
                  ("FINGERCOUNT_MODELS_DIR", "FINGERCOUNT_STATE_DIR")]:
            del self.env[k]

    def fc(self, *args: str, timeout: float = 300) -> Result:
        return run([sys.executable, "-m", "edge", "--config", str(self.src / EMPTY_CONFIG),
                    *args], self.env, timeout, cwd=str(self.src))


