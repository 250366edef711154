"""Golden: digits drawn on a canvas and photographed on paper, read by the shipped digits-cnn.

tests/data/digits-drawn: 280x280 canvas PNGs, strokes by cv2.polylines as a finger or mouse
draws them, black on white, white on black and black on a transparent canvas.
tests/data/digits-photo: 640x480 JPEGs of pen digits on paper with texture, uneven light, a
shadow, rotation and perspective, blur and noise, SYNTHESISED by tools/make_digit_fixtures.py
(not camera photos; their README says so). Each must be read right, through the real
`fingercount classify` command (its own process, the edge runtime, the MNIST-like
preprocessing a `task: digit` package gets), at every precision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import DATA, MODELS, ROOT

FIXTURES = {"drawn": DATA / "digits-drawn", "photo": DATA / "digits-photo"}


def _classify(paths: list[str], precision: str) -> dict[str, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")}
    p = subprocess.run([sys.executable, "-m", "edge", "classify", *paths, "--models-dir", str(MODELS),
                        "--model", "digits-cnn", "--precision", precision],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    return {r["image"]: r for r in out}


@pytest.mark.parametrize("precision", ["int8", "fp16", "fp32"])
@pytest.mark.parametrize("kind", list(FIXTURES))
def test_every_drawn_and_photographed_digit_is_read_right(kind: str, precision: str) -> None:
    root = FIXTURES[kind]
    paths = sorted(str(p) for p in root.glob("[0-9]/*") if p.is_file())
    assert len(paths) == (30 if kind == "drawn" else 20), paths  # every digit, every variant
    got = _classify(paths, precision)
    assert set(got) == set(paths)
    wrong = [f"{os.path.relpath(p, root)}: read {r['label']} ({r['confidence']:.2f})"
             for p, r in got.items() if r["label"] != os.path.basename(os.path.dirname(p))]
    assert not wrong, f"digits-cnn {precision} on {root.name}:\n" + "\n".join(wrong)
    for r in got.values():  # a digit model's answer is a digit, not a finger count
        assert r["count"] is None and r["model"].startswith("digits-cnn@")
