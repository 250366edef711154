"""What machine a benchmark ran on, so numbers from different boards compare honestly.

Everything is read from /proc, /sys and the standard library; a field that cannot be
read on this system is None, never a guess.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
PI_MODEL = Path("/proc/device-tree/model")
CPUINFO = Path("/proc/cpuinfo")
OS_RELEASE = Path("/etc/os-release")
CPU_MODALIAS = Path("/sys/devices/system/cpu/modalias")
# Set by an emulation harness (make test-arm64 sets it); any non-empty value says how.
EMULATED_ENV = "FINGERCOUNT_EMULATED"


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(errors="replace").replace("\x00", "").strip() or None
    except OSError:
        return None


def cpu_model() -> Optional[str]:
    """'model name' on x86; on ARM boards /proc/cpuinfo has 'Model' or only 'CPU part'."""
    text = _read(CPUINFO) or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = val.strip()
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if fields.get(key):
            return fields[key]
    if fields.get("CPU part"):
        return f"ARM CPU part {fields['CPU part']} (implementer {fields.get('CPU implementer', '?')})"
    return platform.processor() or None


def os_name() -> str:
    pretty = None
    for line in (_read(OS_RELEASE) or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip().strip('"')
    kernel = f"{platform.system()} {platform.release()}"
    return f"{pretty} ({kernel})" if pretty else kernel


def _kernel_cpu_type() -> Optional[str]:
    """The CPU type the kernel itself runs on ("x86", "aarch64", …), from sysfs: qemu-user
    fakes uname and can be shown any /proc/cpuinfo, but not the host's sysfs."""
    text = _read(CPU_MODALIAS) or ""
    if not text.startswith("cpu:type:"):
        return None
    return text[len("cpu:type:"):].split(",", 1)[0].split(":", 1)[0] or None


def emulation() -> Optional[str]:
    """Why this process is believed to run under CPU emulation (qemu-user), or None.

    Emulated timings say nothing about a real board, so the bench header must say so.
    Evidence: the harness's FINGERCOUNT_EMULATED, a kernel whose CPU type differs from
    the process's architecture, and qemu-user's QEMU_CPU variable.
    """
    why = []
    flag = os.environ.get(EMULATED_ENV, "").strip()
    if flag:
        why.append(f"{EMULATED_ENV}={flag}")
    kernel = _kernel_cpu_type()
    arch = platform.machine()
    if kernel and arch and not _same_arch(kernel, arch):
        why.append(f"the kernel runs on {kernel}, this process is {arch}")
    qemu_cpu = os.environ.get("QEMU_CPU", "").strip()
    if qemu_cpu and why:  # alone it is only a hint; beside other evidence it names the CPU
        why.append(f"QEMU_CPU={qemu_cpu}")
    elif qemu_cpu:
        why.append(f"QEMU_CPU={qemu_cpu} is set (qemu-user's CPU choice)")
    return "; ".join(why) or None


def _same_arch(kernel: str, arch: str) -> bool:
    families = ({"x86", "x86_64", "i386", "i686", "amd64"}, {"aarch64", "arm64"},
                {"arm", "armv7l", "armv6l"})
    k, a = kernel.lower(), arch.lower()
    return k == a or any(k in f and a in f for f in families)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def xnnpack_status(interp: Any) -> dict:
    """Whether XNNPACK took over the graph of an allocated interpreter, and how we know.

    The runtimes apply XNNPACK as a default delegate; when they do, the execution graph
    holds a DELEGATE node. Its absence means every op runs on the builtin kernels.
    """
    try:
        ops = interp._get_ops_details()  # private but stable across tflite-runtime/litert
    except Exception as e:  # an old runtime without it: say we could not tell
        return {"enabled": None, "how": f"could not inspect the graph ({type(e).__name__})"}
    n_deleg = sum(1 for op in ops if op.get("op_name") == "DELEGATE")
    return {"enabled": n_deleg > 0,
            "how": f"{n_deleg} DELEGATE node(s) in the interpreter's graph of {len(ops)} nodes"}


@lru_cache(maxsize=1)
def _static_info() -> dict:
    import numpy as np

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "os": os_name(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "governor": _read(GOVERNOR),
        "pi_model": _read(PI_MODEL),
        "hostname": platform.node(),
        "emulated": emulation(),
    }
    try:
        import cv2

        info["opencv"] = cv2.__version__
        info["opencv_threads"] = cv2.getNumThreads()
    except ImportError:
        info["opencv"] = None
    try:
        from edge.runtime.interpreter import interpreter_backend

        _, name, version = interpreter_backend()
        info["runtime"] = name
        info["runtime_version"] = version
    except Exception:  # RuntimeNotFound: the report still says what it could
        info["runtime"] = None
        info["runtime_version"] = None
    return info


def machine_info(xnnpack: Optional[dict] = None) -> dict:
    """A JSON-able description of this machine; xnnpack from xnnpack_status() when known."""
    info = dict(_static_info())
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)  # a busy machine gives slower numbers
    except OSError:
        info["loadavg_1m"] = None
    info["xnnpack"] = xnnpack or {"enabled": None, "how": "no interpreter inspected"}
    return info


def describe(info: dict) -> list[str]:
    """Short human lines for the report header."""
    x = info.get("xnnpack") or {}
    xs = {True: "on", False: "off", None: "unknown"}[x.get("enabled")]
    lines = []
    if info.get("emulated"):
        lines.append(f"EMULATED: these timings come from CPU emulation ({info['emulated']}); "
                     "they are not timings of a real board (not Raspberry Pi figures)")
    lines += [
        f"CPU: {info.get('cpu') or 'unknown'} ({info.get('arch')}), "
        f"{info.get('cores')} cores ({info.get('usable_cores')} usable)",
        f"OS: {info.get('os')}; Python {info.get('python')}; numpy {info.get('numpy')}; "
        f"OpenCV {info.get('opencv')}",
        f"Runtime: {info.get('runtime')} {info.get('runtime_version')}; XNNPACK {xs} ({x.get('how', '')})",
        f"CPU governor: {info.get('governor') or 'not readable'}; "
        f"board: {info.get('pi_model') or 'not a Raspberry Pi (no /proc/device-tree/model)'}; "
        f"load average (1 min) at start: {info.get('loadavg_1m')}",
    ]
    return lines
