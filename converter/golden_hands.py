"""Golden hand-stage results on the committed real photos (tests/data/hands-real).

    python -m converter.golden_hands

writes tests/data/golden/hands.json: for two model pairs (the default palm-detection-lite +
hand-landmark-full, and palm-detection-full + hand-landmark-lite, so all four shipped models
are covered), the sha256 of the fp32 files used and, per photo, null (no hand) or the
hand's score, box, handedness and 21 landmarks in frame pixels. tests/test_hands_golden.py
checks the stage still finds them. Regenerate after changing the hand stage or its models,
look at the diff (tools/hands_overlay.py draws the landmarks), commit it.

Edge runtime only: detection on every photo (tracking off), fp32, one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.hands.stage import load_hand_stage
from edge.runtime.package import load_package
from edge.runtime.preprocess import read_image

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
PHOTOS = ROOT / "tests" / "data" / "hands-real"
GOLDEN = ROOT / "tests" / "data" / "golden" / "hands.json"
PAIRS = (("palm-detection-lite", "hand-landmark-full"), ("palm-detection-full", "hand-landmark-lite"))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def photos(root: Path = PHOTOS) -> list[Path]:
    """Every image under root, in path order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def results(models: Path, palm: str, landmark: str, root: Path = PHOTOS) -> dict[str, dict | None]:
    """{path relative to root: None | {score, box, handedness, landmarks}} for one model pair."""
    stage = load_hand_stage(models, palm, landmark, "fp32", threads=1, tracking=False)
    out: dict[str, dict | None] = {}
    for p in photos(root):
        hand = stage(read_image(str(p)))
        out[p.relative_to(root).as_posix()] = None if hand is None else {
            "score": round(hand.score, 5), "box": list(hand.box), "handedness": hand.handedness,
            "landmarks": [[round(float(v), 2) for v in row] for row in hand.landmarks]}
    return out


def golden(models: Path = MODELS, root: Path = PHOTOS) -> dict:
    """The whole golden document."""
    doc: dict = {"written_by": "python -m converter.golden_hands", "photos": root.relative_to(ROOT).as_posix(),
                 "precision": "fp32", "pairs": []}
    for palm, landmark in PAIRS:
        sha = {name: load_package(models / name).variants["fp32"]["sha256"] for name in (palm, landmark)}
        doc["pairs"].append({"palm": palm, "landmark": landmark, "sha256": sha,
                             "results": results(models, palm, landmark, root)})
    return doc


def main(argv: list[str] | None = None) -> int:
    """Write the golden file and say how many photos got a hand per pair."""
    ap = argparse.ArgumentParser(prog="python -m converter.golden_hands", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=str(MODELS))
    ap.add_argument("--out", default=str(GOLDEN))
    a = ap.parse_args(argv)
    doc = golden(Path(a.models))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    for pair in doc["pairs"]:
        found = sum(v is not None for v in pair["results"].values())
        print(f"{a.out}: {pair['palm']} + {pair['landmark']}: a hand in {found} of {len(pair['results'])} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
