"""Preprocessing cost: a single INTER_AREA resize against prepare() (edge/runtime/preprocess.py)
for a 640x480 camera frame (the bundled hand photos blown up) to common model sizes, p50 ms
on one OpenCV thread, plus the mean difference between the two in grey levels.

Run: .venv/bin/python tools/preprocess_bench.py [--sizes 96,112,128,160,224] [--runs 3000]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.bench import percentiles, time_invokes  # noqa: E402
from edge.runtime.preprocess import crop_box, prepare, read_image  # noqa: E402


def p50_ms(fn, frames: list[np.ndarray], runs: int) -> float:
    """bench's own timing loop, each call on the next frame."""
    cycle = itertools.cycle(frames)
    time_invokes(lambda: fn(next(cycle)), 200)
    return percentiles(time_invokes(lambda: fn(next(cycle)), runs))["p50_ms"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="96,112,128,160,224")
    p.add_argument("--runs", type=int, default=3000)
    args = p.parse_args()
    files = sorted((ROOT / "tests" / "data" / "hands").rglob("*.JPG"))
    frames = [cv2.resize(read_image(str(f)), (640, 480), interpolation=cv2.INTER_CUBIC) for f in files]
    x, y, w, h = crop_box(480, 640)
    print("| 640×480 → | single INTER_AREA, ms (p50) | prepare(), ms (p50) | mean difference, grey levels |")
    print("|---|---|---|---|")
    for s in (int(v) for v in args.sizes.split(",")):
        def area(f: np.ndarray, s: int = s) -> np.ndarray:
            return cv2.resize(f[y:y + h, x:x + w], (s, s), interpolation=cv2.INTER_AREA)

        def ours(f: np.ndarray, s: int = s) -> np.ndarray:
            return prepare(f, s, s, 3)

        diff = np.mean([np.abs(ours(f).astype(int) - area(f).astype(int)).mean() for f in frames])
        print(f"| {s}×{s} | {p50_ms(area, frames, args.runs):.3f} | {p50_ms(ours, frames, args.runs):.3f} "
              f"| {diff:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
