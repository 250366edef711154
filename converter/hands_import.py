"""`fingercount-convert import-hands`: MediaPipe Hands' palm-detection and hand-landmark TFLite
models, taken from the mediapipe 0.10.21 wheel, as model packages with sha256, licence,
attribution and provenance. No TensorFlow: the models are copied byte for byte and read
through the edge's own runtime."""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from converter.errors import ConvertError
from converter.package import check_dest, publish, staging, write_bytes, write_json
from edge.runtime.package import sha256_bytes, sha256_file

MEDIAPIPE_VERSION = "0.10.21"
PROJECT_URL = "https://github.com/google/mediapipe"
MODEL_CARD_URL = "https://ai.google.dev/edge/mediapipe/solutions/vision/hand_landmarker"


@dataclass(frozen=True)
class HandModel:
    """One model of the wheel: its package name, task, member path and what it does."""

    name: str
    task: str
    member: str
    what: str


HAND_MODELS = (
    HandModel("palm-detection-lite", "palm-detection", "mediapipe/modules/palm_detection/palm_detection_lite.tflite",
              "palm detector (lite): SSD over 2016 anchors, a box and 7 palm keypoints per palm"),
    HandModel("palm-detection-full", "palm-detection", "mediapipe/modules/palm_detection/palm_detection_full.tflite",
              "palm detector (full): SSD over 2016 anchors, a box and 7 palm keypoints per palm"),
    HandModel("hand-landmark-lite", "hand-landmark", "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite",
              "hand landmarks (lite): 21 landmarks, hand presence, handedness, world landmarks"),
    HandModel("hand-landmark-full", "hand-landmark", "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
              "hand landmarks (full): 21 landmarks, hand presence, handedness, world landmarks"),
)


def git_commit() -> str:
    """HEAD of the repository the converter runs from ('unknown' outside one)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def download_wheel(dest: Path) -> Path:
    """`pip download mediapipe==0.10.21 --no-deps` into dest (a build step: needs the network)."""
    cmd = [sys.executable, "-m", "pip", "download", f"mediapipe=={MEDIAPIPE_VERSION}", "--no-deps",
           "--only-binary=:all:", "-d", str(dest)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if res.returncode != 0 or not wheels:
        last = (res.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise ConvertError(f"pip download mediapipe=={MEDIAPIPE_VERSION} failed: {last}")
    return wheels[0]


def read_members(wheel: Path) -> tuple[dict[str, bytes], Optional[bytes]]:
    """The four model files and the dist-info LICENSE of a mediapipe wheel."""
    if not wheel.is_file():
        raise ConvertError(f"--wheel {wheel}: no such file")
    if not fnmatch.fnmatch(wheel.name, f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"):
        raise ConvertError(f"--wheel {wheel.name}: not a mediapipe {MEDIAPIPE_VERSION} wheel (later wheels "
                           "do not carry the hand models)")
    try:
        with zipfile.ZipFile(wheel) as z:
            names = set(z.namelist())
            missing = [m.member for m in HAND_MODELS if m.member not in names]
            if missing:
                raise ConvertError(f"--wheel {wheel.name}: lacks {', '.join(missing)}")
            files = {m.member: z.read(m.member) for m in HAND_MODELS}
            lic = next((n for n in sorted(names) if fnmatch.fnmatch(n, "mediapipe-*.dist-info/LICENSE*")), None)
            return files, (z.read(lic) if lic else None)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConvertError(f"--wheel {wheel}: not a readable wheel ({e})") from e


def invoke_ms(data: bytes, runs: int = 30) -> tuple[dict, tuple[int, int, int]]:
    """Invoke time on 1 thread (random input): p50 wall ms, p50 CPU ms of the calling thread
    (XNNPACK runs there with 1 thread: on a busy machine the figure without the waiting) and
    the load average; and the input's (h, w, c)."""
    from edge.hands.tensors import TensorModel

    m = TensorModel(data, 1, "model")
    h, w = m.input_hw
    x = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    m.set_input(x)
    for _ in range(3):
        m.interp.invoke()
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.thread_time()
        m.interp.invoke()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"p50_ms": round(float(np.median(times)), 3), "cpu_p50_ms": round(float(np.median(cpu)), 3),
            "threads": 1, "runs": runs, "load_average": load,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}, (h, w, 3)


def model_card(m: HandModel, meta: dict, inv: dict) -> str:
    """README.md of an imported hand package."""
    v = meta["variants"]["fp32"]
    p = meta["provenance"]
    i = meta["input"]
    return f"""# {m.name}

MediaPipe Hands {m.what}. Part of fingercount's hand stage (`edge/hands/`), run by the edge's
own TFLite runtime with numpy pre/post-processing (mediapipe itself is never imported).

- task: `{m.task}`; input {i['height']}x{i['width']}x{i['channels']} RGB, float in [0, 1]
- licence: Apache-2.0 (LICENSE, from the wheel's dist-info); (c) Google LLC, MediaPipe,
  {PROJECT_URL} ; model card: {MODEL_CARD_URL}
- source: {p['source']}: `{p['wheel']}` (sha256 `{p['wheel_sha256']}`), member `{p['member']}`
  (sha256 `{p['member_sha256']}`), copied byte for byte: `{v['file']}` has the same sha256.
- made by: `{p['command']}` on {p['date']} (git {p['git_commit']})

## Measured

| variant | bytes | invoke p50, 1 thread | CPU time p50 |
|---|---|---|---|
| fp32 | {v['bytes']:,} | {inv['p50_ms']:.2f} ms | {inv['cpu_p50_ms']:.2f} ms |

Invoke time: {inv['runs']} invokes after 3 warm-up ones on random input, ai-edge-litert (XNNPACK),
{inv['machine']}, load average {inv['load_average']} (wall time includes waiting for a core on a
busy machine; the calling thread's CPU time does not). fp16/int8 variants are added by the
converter's quantization of the hand models, with their own figures.
"""


def import_hands(wheel: Path, out: Path, command: str, force: bool = False,
                 wheel_source: str = f"mediapipe {MEDIAPIPE_VERSION} wheel from PyPI") -> list[Path]:
    """Write the four hand packages into out/; returns their folders."""
    for m in HAND_MODELS:  # refuse before writing anything
        check_dest(out, m.name, force)
    files, lic = read_members(wheel)
    if lic is None:
        raise ConvertError(f"--wheel {wheel.name}: has no dist-info LICENSE; the Apache-2.0 text must ship "
                           "with the models")
    wheel_sha = sha256_file(wheel)
    date = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    commit = git_commit()
    done = []
    for m in HAND_MODELS:
        data = files[m.member]
        inv, (h, w, c) = invoke_ms(data)
        with staging(out, m.name) as stage:
            entry = write_bytes(stage, f"{m.name}_fp32.tflite", data)
            (stage / "LICENSE").write_bytes(lic)
            meta = {
                "format": 1, "name": m.name, "version": MEDIAPIPE_VERSION, "task": m.task,
                "input": {"height": h, "width": w, "channels": c, "color": "rgb", "range": [0, 1]},
                "variants": {"fp32": entry},
                "retrainable": None,
                "metrics": {"fp32": {"invoke": inv}},
                "license": "Apache-2.0",
                "attribution": f"MediaPipe Hands, (c) Google LLC, Apache License 2.0; {PROJECT_URL}",
                "provenance": {
                    "source": wheel_source, "wheel": wheel.name, "wheel_sha256": wheel_sha,
                    "member": m.member, "member_sha256": sha256_bytes(data),
                    "command": command, "date": date, "git_commit": commit,
                },
            }
            (stage / "README.md").write_text(model_card(m, meta, inv))
            write_json(stage / "model.json", meta)
            done.append(publish(stage, out, m.name, replace=force))
    return done


def run(wheel: Optional[str], download: bool, out: Path, command: str, force: bool) -> list[Path]:
    """The command: a given wheel, or one pip downloads into a temporary folder."""
    if bool(wheel) == bool(download):
        raise ConvertError("give exactly one of --wheel PATH or --download")
    if wheel:
        return import_hands(Path(wheel), out, command, force)
    tmp = Path(tempfile.mkdtemp(prefix="mediapipe-wheel-"))
    try:
        return import_hands(download_wheel(tmp), out, command, force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def names() -> Sequence[str]:
    """The packages import-hands writes."""
    return [m.name for m in HAND_MODELS]
