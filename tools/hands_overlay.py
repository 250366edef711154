"""Draw what the hand stage finds: landmarks, their box, handedness and score, on each image.

    python tools/hands_overlay.py IMAGE_OR_FOLDER... --out overlays/ [--palm P] [--landmark L]

Writes OUT/<image stem>.png per image (a folder's images recursively): to look at goldens
(python -m converter.golden_hands) or a miss before trusting a figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.hands.stage import load_hand_stage  # noqa: E402
from edge.runtime.preprocess import read_image  # noqa: E402

# MediaPipe's hand skeleton: thumb, index, middle, ring, pinky chains and the palm
BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
         (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]


def images(paths: list[str]) -> list[Path]:
    """The image files named, and those under the folders named."""
    out: list[Path] = []
    for p in map(Path, paths):
        out += sorted(q for q in p.rglob("*") if q.suffix.lower() in (".jpg", ".jpeg", ".png")) if p.is_dir() else [p]
    return out


def draw(rgb: np.ndarray, hand, last_score: float) -> np.ndarray:
    """A BGR copy of the frame with the hand drawn (or 'no hand' and the best presence)."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = max(1, round(max(img.shape[:2]) / 320))
    if hand is None:
        cv2.putText(img, f"no hand ({last_score:.2f})", (5, 15 * scale), 0, 0.4 * scale, (0, 0, 255), scale)
        return img
    pts = [(int(round(x)), int(round(y))) for x, y, _ in hand.landmarks]
    for a, b in BONES:
        cv2.line(img, pts[a], pts[b], (255, 255, 255), scale)
    for i, p in enumerate(pts):
        cv2.circle(img, p, 2 * scale, (0, 255, 0) if i in (4, 8, 12, 16, 20) else (255, 0, 0), -1)
    cv2.rectangle(img, hand.box[:2], hand.box[2:], (0, 200, 255), scale)
    cv2.putText(img, f"{hand.handedness} {hand.score:.2f}", (5, 15 * scale), 0, 0.4 * scale, (0, 200, 255), scale)
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--palm", default="palm-detection-lite")
    ap.add_argument("--landmark", default="hand-landmark-full")
    ap.add_argument("--models", default=str(ROOT / "models"))
    a = ap.parse_args(argv)
    stage = load_hand_stage(Path(a.models), a.palm, a.landmark, tracking=False)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for p in images(a.paths):
        rgb = read_image(str(p))
        hand = stage(rgb)
        cv2.imwrite(str(out / f"{p.stem}.png"), draw(rgb, hand, stage.last_score))
        print(f"{p}: {'no hand' if hand is None else f'{hand.handedness} {hand.score:.3f} box {list(hand.box)}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
