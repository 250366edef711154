"""Make tests/data/hands-clip/epsrc-set1.mp4: a short replay video for tracking tests and
`bench --pipeline`, from consecutive EPSRC frames (every third frame of one webcam session).

    python tools/make_hand_clip.py [--data ../shared/data/epsrc-finger-counting]

Sequence: 30 frames of "3", 8 frames of the empty wall (the hand leaves: tracking is lost),
30 frames of "5" (a new hand: detection again). CC BY-SA 4.0 like its source (README beside it).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import cv2

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "hands-clip" / "epsrc-set1.mp4"


def frames(folder: Path, prefix: str, n: int) -> list[Path]:
    files = [f for f in folder.iterdir() if f.name.startswith(prefix)]
    return sorted(files, key=lambda f: int(re.findall(r"(\d+)\.jpg$", f.name)[0]))[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/epsrc-finger-counting")
    args = ap.parse_args()
    data = Path(args.data)
    seq = (frames(data / "3", "set1_three_", 30) + [data / "no-hand" / "empty-wall_set1.jpg"] * 8
           + frames(data / "5", "set1_five_", 30))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(OUT), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for f in seq:
        img = cv2.imread(str(f))
        writer.write(cv2.resize(img, (640, 480)) if img.shape[:2] != (480, 640) else img)
    writer.release()
    print(f"{OUT}: {len(seq)} frames, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
