"""Interpreter loading with graceful fallback: ai_edge_litert, tflite_runtime, tensorflow.lite.

TensorFlow is only imported as the very last resort, lazily, and never at module import.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from edge.errors import ModelError, RuntimeNotFound

_CANDIDATES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow"),
)


@lru_cache(maxsize=1)
def interpreter_backend() -> tuple[Any, str, str]:
    """(Interpreter class, distribution name, version) of the first runtime that imports."""
    for module, dist in _CANDIDATES:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        try:
            from importlib.metadata import version

            ver = version(dist if dist != "tensorflow" else "tensorflow")
        except Exception:
            ver = "unknown"
        return mod.Interpreter, dist, ver
    raise RuntimeNotFound(
        "no TFLite runtime found: pip install ai-edge-litert (or tflite-runtime)"
    )


def check_flatbuffer(data: bytes, what: str = "model") -> None:
    """Cheap sanity checks before the interpreter's own verifier sees the bytes."""
    if not data:
        raise ModelError(f"{what}: file is empty")
    if len(data) < 16:
        raise ModelError(f"{what}: file is truncated ({len(data)} bytes)")
    if data[4:8] != b"TFL3":
        raise ModelError(f"{what}: not a TFLite flatbuffer (no TFL3 identifier)")


# The C++ runtime prints this once per process, on the first interpreter, straight to fd 2;
# TF_CPP_MIN_LOG_LEVEL does not reach TFLite's minimal logger (tried: ai-edge-litert 2.3.0).
RUNTIME_NOISE = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)
_quiet_lock = threading.Lock()
_quieted = False


@contextmanager
def _without_runtime_banner() -> Iterator[None]:
    """Around the process's first interpreter: fd 2 goes to a temporary file, and everything
    written there except the runtime's banner is written back to stderr afterwards."""
    global _quieted
    with _quiet_lock:
        if _quieted:
            yield
            return
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no usable fd 2: nothing to keep clean
            yield
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
                _quieted = True  # a refused model may fail before the banner: keep watching
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                kept = [ln for ln in tmp.read().splitlines(keepends=True)
                        if ln.rstrip(b"\r\n") not in RUNTIME_NOISE]
                if kept:
                    os.write(2, b"".join(kept))


def make_interpreter(data: bytes, threads: int = 2, what: str = "model") -> Any:
    """An allocated interpreter from model bytes; any failure is a ModelError, never a crash."""
    check_flatbuffer(data, what)
    cls, _, _ = interpreter_backend()
    try:
        with _without_runtime_banner():
            interp = cls(model_content=data, num_threads=max(1, int(threads)))
            interp.allocate_tensors()
    except (ValueError, RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{what}: the interpreter refused it: {first}") from e
    return interp
