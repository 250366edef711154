"""Runtime statistics: frame rate, invoke latency, drops, temperature, throttling, memory."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Any, Optional

import numpy as np

THERMAL = Path("/sys/class/thermal")


def cpu_temperature() -> Optional[float]:
    """°C of the CPU thermal zone (the first zone if none says cpu/soc), None if unreadable."""
    try:
        zones = sorted(THERMAL.glob("thermal_zone*"))
    except OSError:
        return None
    best = None
    for z in zones:
        try:
            kind = (z / "type").read_text().strip().lower()
            milli = int((z / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        if best is None or any(k in kind for k in ("cpu", "soc", "x86_pkg")):
            best = milli / 1000.0
            if any(k in kind for k in ("cpu", "soc", "x86_pkg")):
                break
    return best


_THROTTLE_BITS = {0: "under_voltage", 1: "freq_capped", 2: "throttled", 3: "soft_temp_limit",
                  16: "under_voltage_occurred", 17: "freq_capped_occurred",
                  18: "throttled_occurred", 19: "soft_temp_limit_occurred"}


def _read_throttled() -> Optional[int]:
    # The firmware driver's sysfs file needs no device access (the service's DeviceAllow=
    # has no /dev/vcio); vcgencmd is the fallback.
    for f in glob.glob("/sys/devices/platform/soc*/soc*:firmware/get_throttled"):
        try:
            return int(Path(f).read_text().strip(), 16)
        except (OSError, ValueError):
            continue
    exe = shutil.which("vcgencmd")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=1).stdout
        return int(out.strip().split("=", 1)[1], 16)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None


def throttling() -> Optional[dict[str, Any]]:
    """Raspberry Pi throttling flags, decoded; None where the board does not say."""
    raw = _read_throttled()
    if raw is None:
        return None
    flags = [name for bit, name in _THROTTLE_BITS.items() if raw & (1 << bit)]
    return {"raw": hex(raw), "flags": flags}


def rss_mb() -> Optional[float]:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


class FrameStats:
    """Sliding window of classified frames (times and invoke latencies)."""

    def __init__(self, window_s: float = 10.0, keep: int = 2000):
        self.window_s = window_s
        self._t: deque[float] = deque(maxlen=keep)
        self._invoke: deque[float] = deque(maxlen=keep)
        self.frames = 0
        self.started = time.monotonic()

    def record(self, invoke_ms: float, now: Optional[float] = None) -> None:
        self._t.append(time.monotonic() if now is None else now)
        self._invoke.append(invoke_ms)
        self.frames += 1

    def fps(self, now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        recent = [t for t in self._t if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], recent[-1] - recent[0])
        return (len(recent) - 1) / span if span > 0 else 0.0

    def invoke_percentiles(self) -> tuple[float, float]:
        if not self._invoke:
            return 0.0, 0.0
        a = np.fromiter(self._invoke, dtype=np.float64)
        return float(np.percentile(a, 50)), float(np.percentile(a, 95))

    def uptime_s(self) -> float:
        return time.monotonic() - self.started
