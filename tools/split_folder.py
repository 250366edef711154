"""Lay out one split of a class-folder dataset (the converter's file-name hash rule) as a
folder of symlinks, so `fingercount eval` scores exactly the photos a model card calls its
test split:

    python tools/split_folder.py ../shared/data/sign-language-digits test /tmp/sign-test --labels 0,1,2,3,4,5
    fingercount eval --data /tmp/sign-test --model fingers-landmarks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from converter.data import split_of  # noqa: E402  (numpy only: no TensorFlow)
from edge.camera.replay import IMAGE_SUFFIXES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("split", choices=["train", "val", "test"])
    ap.add_argument("out", type=Path)
    ap.add_argument("--labels", help="only these class folders (comma-separated)")
    args = ap.parse_args()
    keep = set(args.labels.split(",")) if args.labels else None
    n = 0
    for d in sorted(p for p in args.data.iterdir() if p.is_dir()):
        if keep is not None and d.name not in keep:
            continue
        for f in sorted(d.rglob("*")):
            if f.suffix.lower() in IMAGE_SUFFIXES and split_of(f.name) == args.split:
                dst = args.out / d.name / f.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not dst.exists():
                    dst.symlink_to(f.resolve())
                n += 1
    print(f"{args.out}: {n} photos of the {args.split} split")


if __name__ == "__main__":
    main()
