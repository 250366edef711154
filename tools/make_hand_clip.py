"""Make tests/data/hands-clip/epsrc-set1.mp4: a short replay video for tracking tests and
`bench --pipeline`, from real webcam photos of the EPSRC finger-counting set.

    python tools/make_hand_clip.py [--data ../shared/data/epsrc-finger-counting]

The set keeps every third frame of its streams and the hand wanders between them (its centre
moves 15-300 px from one kept frame to the next), so the photos are not a video. The clip
moves each photo as a steady hand moves: 30 frames of a "3" (set1_three_1.jpg) sliding 4 px a
frame and turning by up to 6 degrees, 8 frames of the empty wall (the hand leaves: tracking
is lost), 30 frames of a "5" (set1_five_1.jpg) moving the other way. 640 x 480, 10 fps.
CC BY-SA 4.0 like its source (README beside it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "hands-clip" / "epsrc-set1.mp4"


def moving(img: np.ndarray, n: int, step: tuple[float, float], turn: float) -> list[np.ndarray]:
    """n frames of img shifted `step` px a frame and turned up to `turn` degrees (a slow wave)."""
    h, w = img.shape[:2]
    out = []
    for i in range(n):
        angle = turn * np.sin(2 * np.pi * i / n)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        m[:, 2] += np.array([step[0] * (i - n / 2), step[1] * (i - n / 2)])
        out.append(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/epsrc-finger-counting")
    args = ap.parse_args()
    data = Path(args.data)

    def read(rel: str) -> np.ndarray:
        img = cv2.imread(str(data / rel))
        if img is None:
            raise SystemExit(f"{data / rel}: not a readable image")
        return cv2.resize(img, (640, 480))

    seq = (moving(read("3/set1_three_1.jpg"), 30, (4.0, 1.0), 6.0)
           + [read("no-hand/empty-wall_set1.jpg")] * 8
           + moving(read("5/set1_five_1.jpg"), 30, (-4.0, -1.0), 6.0))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(OUT), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (640, 480))
    for f in seq:
        writer.write(f)
    writer.release()
    print(f"{OUT}: {len(seq)} frames, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
