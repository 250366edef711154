"""Fault-injection harness: the REAL daemon as a subprocess, a real MQTT watcher, a real
sd_notify socket. Tests talk to the daemon only through its CLI, MQTT and systemd contracts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import paho.mqtt.client as mqtt
import pytest

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
HANDS = ROOT / "tests" / "data" / "hands"


def model_dir() -> Path:
    """The smallest shipped finger-count model (fast on 2 shared cores); FC_TEST_MODEL
    may point at another package directory."""
    if os.environ.get("FC_TEST_MODEL"):
        cands = [Path(os.environ["FC_TEST_MODEL"])]
    else:
        cands = [ROOT / "models" / n for n in ("fingers-cnn", "fingers-mobilenet")]
    for d in cands:
        if (d / "model.json").is_file():
            return d
    pytest.fail(f"no model package at {', '.join(map(str, cands))}: build one with `make models` "
                "(or check out the committed models/)", pytrace=False)


def hand_images(label: str) -> list[Path]:
    imgs = sorted((HANDS / label).glob("*.JPG"))
    assert imgs, f"no test images under {HANDS / label}"
    return imgs


def changing_replay(dest: Path, labels: tuple[str, ...] = ("1", "2", "3", "4", "5", "0"),
                    hold: int = 4, per_label: int = 2) -> Path:
    """A replay folder whose pictures change class every `hold` frames (sorted by name)."""
    dest.mkdir(parents=True, exist_ok=True)
    i = 0
    for k in range(per_label):
        for lab in labels:
            src = hand_images(lab)[k % len(hand_images(lab))]
            for _ in range(hold):
                shutil.copyfile(src, dest / f"{i:05d}_{lab}.jpg")
                i += 1
    return dest


# ---- sd_notify receiver ----------------------------------------------------------------

@dataclass
class NotifySocket:
    """A real unix datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    path: Path
    messages: list[tuple[float, str]] = field(default_factory=list)
    _sock: Optional[socket.socket] = None
    _thread: Optional[threading.Thread] = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> NotifySocket:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, name="notify-rx", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            self.messages.append((time.monotonic(), data.decode(errors="replace")))

    def times(self, field_: str) -> list[float]:
        return [t for t, m in list(self.messages) if field_ in m.split("\n")]

    def first(self, field_: str) -> Optional[float]:
        t = self.times(field_)
        return t[0] if t else None

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(1)
        if self._sock:
            self._sock.close()


# ---- MQTT watcher ----------------------------------------------------------------------

@dataclass
class Msg:
    t: float
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)

    @property
    def text(self) -> str:
        return self.payload.decode(errors="replace")


class Watcher:
    """Subscribes to fingercount/<device>/#; a persistent session (clean_session=False) so
    QoS 1 messages the daemon sends while the watcher reconnects after a broker restart are
    queued for it by the broker (the broker fixture then needs persistence)."""

    def __init__(self, port: int, device: str, client_id: Optional[str] = None):
        self.port = port
        self.base = f"fingercount/{device}"
        self.msgs: list[Msg] = []
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"watch-{device}-{os.getpid()}",
                                  clean_session=client_id is None)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(f"{self.base}/#", qos=1)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.msgs.append(Msg(time.monotonic(), m.topic, bytes(m.payload), bool(m.retain)))

    def start(self) -> Watcher:
        self.client.connect_async("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(10), "watcher could not connect to the test broker"
        time.sleep(0.2)  # let the SUBACK land before the daemon starts talking
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, name: str, since: float = 0.0) -> list[Msg]:
        topic = f"{self.base}/{name}"
        with self._lock:
            return [m for m in self.msgs if m.topic == topic and m.t >= since]

    def events(self, kind: Optional[str] = None, since: float = 0.0) -> list[dict]:
        out = []
        for m in self.on("event", since):
            try:
                e = m.json()
            except ValueError:
                continue
            if kind is None or e.get("type") == kind:
                out.append(e)
        return out

    def wait(self, pred: Callable[[], Any], timeout: float, what: str) -> Any:
        v = wait_until(pred, timeout, 0.05)
        if not v:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        return v

    def wait_availability(self, value: str, since: float, timeout: float) -> float:
        def got() -> Optional[float]:
            for m in self.on("availability", since):
                if m.text == value:
                    return m.t
            return None
        return self.wait(got, timeout, f"availability {value!r}")


# ---- the daemon ------------------------------------------------------------------------

class Daemon:
    """`fingercount run` in a subprocess with its own state dir, log and notify socket."""

    def __init__(self, tmp: Path, port: int, camera: str, device: str = "faultpi",
                 env: Optional[dict[str, str]] = None, args: tuple[str, ...] = ()):
        self.tmp = tmp
        self.port = port
        self.camera = camera
        self.device = device
        self.state = tmp / "state"
        self.log = tmp / "daemon.log"
        self.out = tmp / "daemon.out"
        self.extra_env = env or {}
        self.args = args
        self.proc: Optional[subprocess.Popen] = None
        self.notify: Optional[NotifySocket] = None
        self.started_at = 0.0

    def env(self) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")}
        e.update({
            "FINGERCOUNT_STATE_DIR": str(self.state),
            "FINGERCOUNT_MODELS_DIR": str(model_dir().parent),
            "FINGERCOUNT_MODEL__NAME": model_dir().name,
            "FINGERCOUNT_MODEL__PRECISION": "int8",
            "FINGERCOUNT_MODEL__THREADS": "1",
            "FINGERCOUNT_GPIO__ENABLED": "false",
            "FINGERCOUNT_MQTT__DISCOVERY": "false",
            "PYTHONUNBUFFERED": "1",
        })
        e.update(self.extra_env)
        return e

    def start(self, notify: bool = True) -> Daemon:
        self.state.mkdir(parents=True, exist_ok=True)
        env = self.env()
        if notify:
            n = len(list(self.tmp.glob("notify-*.sock")))
            self.notify = NotifySocket(self.tmp / f"notify-{n}.sock").start()
            env["NOTIFY_SOCKET"] = str(self.notify.path)
            env.setdefault("WATCHDOG_USEC", "2000000")
        cmd = [sys.executable, "-m", "edge", "run", "--camera", self.camera,
               "--mqtt", f"127.0.0.1:{self.port}", "--device-id", self.device, "--print",
               *self.args]
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(self.out, "ab"),
                                     stderr=open(self.log, "ab"), start_new_session=True)
        if notify and "WATCHDOG_PID" not in self.extra_env:
            pass  # WATCHDOG_PID unset: the watchdog is meant for whoever reads WATCHDOG_USEC
        return self

    def wait_ready(self, timeout: float = 60) -> float:
        assert self.notify is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.notify.first("READY=1")
            if t is not None:
                return t
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"no READY=1 within {timeout} s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-n:])

    def stdout_lines(self) -> list[str]:
        return self.out.read_text(errors="replace").splitlines() if self.out.exists() else []

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, as systemd does; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"daemon ignored SIGTERM for {timeout} s:\n{self.tail()}") from None
        return self.proc.returncode

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.notify is not None:
            self.notify.close()


