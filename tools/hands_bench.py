"""Figures of the hand stage (edge/hands) for notes: per-model invoke time, whole-stage time
on 640x480 frames (detection every frame vs tracking), and how many photos of a folder get a
hand.

    python tools/hands_bench.py invoke [--threads 1] [--runs 200]
    python tools/hands_bench.py stage [--palm P] [--landmark L] [--frames 200] [--photo PATH] [--no-mirror-retry]
    python tools/hands_bench.py found [--data ../shared/data/epsrc-finger-counting] [--palm P] [--landmark L]
                                      [--min-detection 0.5] [--min-presence 0.5] [--no-mirror-retry]

Runs the real models through the edge runtime (fp32 unless --precision). Beside wall-clock
times it gives the CPU time of the calling thread (with 1 interpreter thread XNNPACK runs
there): on a shared, loaded machine that is the figure that does not include waiting for a core. `stage` replays a
640x480 webcam photo of a hand moved 2 px per frame (a hand that stays in view), timing each
call of HandStage with tracking on and off; `found` runs detection on every photo (tracking
off: each photo is its own scene) of the class folders and of no-hand/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.hands.stage import load_hand_stage, load_model  # noqa: E402
from edge.runtime.package import load_package  # noqa: E402
from edge.runtime.preprocess import read_image  # noqa: E402

MODELS = ROOT / "models"
NAMES = ("palm-detection-lite", "palm-detection-full", "hand-landmark-lite", "hand-landmark-full")
PHOTO = ROOT / "tests" / "data" / "hands-real" / "epsrc" / "5" / "set1_five_1.jpg"


def _pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p90": round(float(np.percentile(a, 90)), 2),
            "mean": round(float(a.mean()), 2)}


def machine() -> str:
    """CPU, cores and the 1-minute load: the figures depend on them."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.2f} at start"


def cmd_invoke(a: argparse.Namespace) -> dict:
    """p50/p90 invoke ms of each hand model (interpreter invoke only)."""
    out = {}
    for name in NAMES:
        m = load_model(load_package(MODELS / name), a.precision, a.threads)
        h, w = m.input_hw
        m.set_input(np.random.default_rng(0).random((h, w, 3), dtype=np.float32))
        for _ in range(10):
            m.interp.invoke()
        ts, cpu = [], []
        for _ in range(a.runs):
            t0, c0 = time.perf_counter(), time.thread_time()
            m.interp.invoke()
            ts.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.thread_time() - c0) * 1e3)
        out[name] = {"wall": _pct(ts), "cpu": _pct(cpu)}
        print(f"{name} {a.precision} x{a.threads}: invoke p50 {out[name]['wall']['p50']:.2f} ms  "
              f"p90 {out[name]['wall']['p90']:.2f} ms  (CPU time of the calling thread p50 {out[name]['cpu']['p50']:.2f} ms)")
    return out


def frames(n: int, photo: Path = PHOTO) -> list[np.ndarray]:
    """n 640x480 frames of the photo (a hand) moving 2 px per frame, back and forth."""
    rgb = cv2.resize(read_image(str(photo)), (640, 480))
    out = []
    for i in range(n):
        dx = 2 * (i % 40 if (i // 40) % 2 == 0 else 40 - i % 40)
        m = np.array([[1, 0, dx], [0, 1, 0]], np.float32)
        out.append(cv2.warpAffine(rgb, m, (640, 480), borderMode=cv2.BORDER_REPLICATE))
    return out


def cmd_stage(a: argparse.Namespace) -> dict:
    """Whole HandStage call per 640x480 frame, tracking off (detect every frame) and on."""
    fs = frames(a.frames, Path(a.photo))
    out = {}
    for tracking in (False, True):
        st = load_hand_stage(MODELS, a.palm, a.landmark, a.precision, a.threads, tracking,
                             mirror_retry=not a.no_mirror_retry)
        for f in fs[:10]:
            st(f)
        st.reset()
        st.detections = 0
        total, cpu, det, lmk, found = [], [], [], [], 0
        for f in fs:
            t0, c0 = time.perf_counter(), time.thread_time()
            hand = st(f)
            total.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.thread_time() - c0) * 1e3)
            det.append(st.timing_ms["detect"])
            lmk.append(st.timing_ms["landmarks"])
            found += hand is not None
        key = "tracking" if tracking else "detect_every_frame"
        tot, c, d, lm = _pct(total), _pct(cpu), _pct(det), _pct(lmk)
        out[key] = {"total": tot, "cpu": c, "detect": d, "landmarks": lm,
                    "hands": found, "frames": len(fs), "detections": st.detections}
        print(f"{a.palm} + {a.landmark} {a.precision} x{a.threads}, {key}: per frame p50 {tot['p50']:.2f} ms "
              f"(p90 {tot['p90']:.2f}; detect p50 {d['p50']:.2f}, landmarks p50 {lm['p50']:.2f}; "
              f"CPU time p50 {c['p50']:.2f}); hand in {found}/{len(fs)} frames, {st.detections} detections")
    return out


def cmd_found(a: argparse.Namespace) -> dict:
    """Photos of each class folder (and no-hand/) in which the stage finds a hand."""
    st = load_hand_stage(MODELS, a.palm, a.landmark, a.precision, a.threads, tracking=False,
                         min_detection=a.min_detection, min_presence=a.min_presence,
                         mirror_retry=not a.no_mirror_retry)
    data = Path(a.data)
    out: dict[str, dict] = {}
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        hit, missed = 0, []
        for p in files:
            if st(read_image(str(p))) is not None:
                hit += 1
            else:
                missed.append(p.name)
        out[d.name] = {"n": len(files), "hand": hit, "no_hand": missed if d.name == "no-hand" else len(missed)}
        print(f"{d.name}: a hand in {hit} of {len(files)}")
    hands = [v for k, v in out.items() if k != "no-hand"]
    n, hit = sum(v["n"] for v in hands), sum(v["hand"] for v in hands)
    print(f"hand photos: a hand in {hit} of {n} ({100 * hit / max(n, 1):.1f} %); "
          f"no-hand photos: a false hand in {out.get('no-hand', {}).get('hand', 0)} of {out.get('no-hand', {}).get('n', 0)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["invoke", "stage", "found"])
    ap.add_argument("--palm", default="palm-detection-lite")
    ap.add_argument("--landmark", default="hand-landmark-full")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "epsrc-finger-counting"))
    ap.add_argument("--min-detection", type=float, default=0.5)
    ap.add_argument("--min-presence", type=float, default=0.5)
    ap.add_argument("--no-mirror-retry", action="store_true", help="HandStage(mirror_retry=False)")
    ap.add_argument("--photo", default=str(PHOTO), help="stage: the photo the frames are made of "
                    "(a no-hand photo times the stage in an empty room)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args(argv)
    print(f"machine: {machine()}")
    res = {"invoke": cmd_invoke, "stage": cmd_stage, "found": cmd_found}[a.what](a)
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "machine": machine(), "results": res}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
