"""sd_notify(3) over $NOTIFY_SOCKET, without libsystemd. A no-op outside systemd.

The daemon sends READY=1 once camera, model and MQTT are up, WATCHDOG=1 only while
frames are being classified (so systemd restarts a stuck pipeline) and STOPPING=1 at
SIGTERM. Sending never blocks and never raises: the service manager being gone or slow
must not stop classification.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Optional

log = logging.getLogger(__name__)


def _socket_address(address: str) -> Optional[str]:
    """$NOTIFY_SOCKET -> sendto() address: a path, or "@name" for an abstract socket."""
    if address.startswith("@"):
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    # sd_notify(3) also knows vsock:; a Pi never gets it, so say so once and stay quiet.
    log.warning("NOTIFY_SOCKET=%r is not a unix socket path; systemd notifications disabled", address)
    return None


def watchdog_usec_from(environ: Mapping[str, str], pid: Optional[int] = None) -> Optional[int]:
    """WatchdogSec= in microseconds when the watchdog is meant for this process (sd_watchdog_enabled)."""
    raw, owner = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None  # set for our parent (e.g. a wrapper script), not for us
        except ValueError:
            return None
    return usec


class Notifier:
    def __init__(self, address: Optional[str], watchdog_usec: Optional[int] = None):
        self.address = address
        self._sock: Optional[socket.socket] = None
        self._addr: Optional[str] = _socket_address(address) if address else None
        self._watchdog_usec = watchdog_usec
        self._lock = threading.Lock()
        self._last_ping = 0.0
        if self._addr:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls, unset: bool = False) -> Notifier:
        """From $NOTIFY_SOCKET / $WATCHDOG_USEC; unset them so child processes do not inherit them."""
        n = cls(os.environ.get("NOTIFY_SOCKET"), watchdog_usec_from(os.environ))
        if unset:
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)
        return n

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def watchdog_usec(self) -> Optional[int]:
        """WatchdogSec= in microseconds when the watchdog is meant for this process."""
        if self._watchdog_usec is not None:
            return self._watchdog_usec
        return watchdog_usec_from(os.environ)

    def watchdog_interval(self) -> Optional[float]:
        """Seconds between pings: half the timeout, as sd_watchdog_enabled(3) advises."""
        usec = self.watchdog_usec()
        return usec / 2e6 if usec else None

    def notify(self, state: str) -> bool:
        if self._sock is None or self._addr is None:
            return False
        try:
            # MSG_DONTWAIT: a full queue at the manager drops this message, never the frame.
            self._sock.sendto(state.encode(), socket.MSG_DONTWAIT, self._addr)
            return True
        except OSError as e:
            log.debug("sd_notify %r failed: %s", state.split("\n")[0], e)
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify(f"READY=1\nMAINPID={os.getpid()}" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (slow model load on a Pi Zero)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def watchdog_ping(self) -> bool:
        """Call once per classified frame: sends WATCHDOG=1 at most every half interval."""
        interval = self.watchdog_interval()
        if interval is None or self._sock is None:
            return False
        now = time.monotonic()
        with self._lock:
            if now - self._last_ping < interval / 2:
                return False
            self._last_ping = now
        return self.watchdog()

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
