"""Personalisation benchmark for the landmark counter: does a retrain on 10 captures per count
fix a user the shipped head reads wrong?

Data: the real-world dev set (../shared/data/epsrc-finger-counting, classes 1-5), its hands
found by the edge's hand stage (models/, fp32, no tracking; cached like the converter's).
Users (--shift):
  none:  the photos as they are (this wall, this person);
  bent:  a user who does not straighten the fingers they show: every extended finger (the
         shipped head's own indicators > 0.5) bent 50-65 degrees at PIP, 20-35 at DIP and
         10-20 at MCP (converter/landmark_augment.curl's fold, partial), the thumb swung a
         third of the way in; the count is unchanged;
Per class, the first 10 photos by sha256 of the file name are the captures, the rest the
evaluation set. Captures go into a real SampleStore with the hand the daemon would have
seen (StoredHand), then edge.retrain.retrain (real gate, install, features through
edge.sample_features) and the installed head is scored by LandmarkCounter.

Run: PYTHONPATH=. .venv/bin/python tools/landmark_personalize.py [--shift bent] [--json F] [--png F]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from converter.landmark_augment import canonical, rotate  # noqa: E402
from converter.landmark_build import dev_files  # noqa: E402
from converter.landmark_data import HandSpec, LandmarkCache  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.hands.counter import LandmarkCounter  # noqa: E402
from edge.hands.features import landmark_features  # noqa: E402
from edge.retrain import retrain  # noqa: E402
from edge.runtime.package import load_package  # noqa: E402
from edge.runtime.preprocess import read_image  # noqa: E402
from edge.sample_features import LandmarkFeatures, sample_features  # noqa: E402
from edge.samples import SampleStore, StoredHand  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "epsrc-finger-counting"
LABELS = [str(i) for i in range(6)]


def extended(c: np.ndarray) -> list[int]:
    """Fingers (0 thumb … 4 pinky) the features' soft indicators call extended."""
    f = landmark_features(c, "right")
    return [i for i in range(5) if f[97 + i] > 0.5]


def bend(c: np.ndarray, fingers: list[int], rng: np.random.Generator) -> np.ndarray:
    out = c.copy()
    for f in fingers:
        if f == 0:  # the thumb a third of the way across the palm
            target = 0.5 * (out[5] + out[13])
            d, want = out[4] - out[1], target - out[1]
            ang = np.arccos(np.clip(d @ want / np.linalg.norm(d) / np.linalg.norm(want), -1, 1)) / 3
            out[[2, 3, 4]] = rotate(out[[2, 3, 4]], out[1], np.cross(d, want), ang)
            continue
        mcp, pip, dip, tip = (1 + 4 * f, 2 + 4 * f, 3 + 4 * f, 4 + 4 * f)
        palm = np.array([0.0, 0.0, 1.0])
        for j, rest, lo_hi in ((mcp, (pip, dip, tip), (5, 15)), (pip, (dip, tip), (30, 45)),
                               (dip, (tip,), (15, 25))):
            axis = np.cross(out[rest[0]] - out[j], palm)
            out[list(rest)] = rotate(out[list(rest)], out[j], axis, np.radians(rng.uniform(*lo_hi)))
    return out


def shifted(c: np.ndarray, shift: str, rng: np.random.Generator) -> np.ndarray:
    return c if shift == "none" else bend(c, extended(c), rng)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shift", default="bent", choices=["none", "bent"])
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--data", default=str(DEV))
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=200, help="retrain.epochs (default: the config default)")
    ap.add_argument("--l2", type=float, default=0.001, help="retrain.l2 (default: the config default)")
    ap.add_argument("--groups", help="retrain on these feature groups (comma-separated; default: the "
                                     "package's retrainable.groups)")
    ap.add_argument("--json")
    ap.add_argument("--png")
    a = ap.parse_args()
    models = Path(a.models)
    rng = np.random.default_rng(5)
    files = dev_files(Path(a.data), LABELS)
    lms = LandmarkCache(HandSpec(models)).extract(files)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, {"state_dir": tmp, "models_dir": str(models),
                                 "model": {"name": "fingers-landmarks", "threads": 1},
                                 "retrain": {"epochs": a.epochs, "max_seconds": 120, "l2": a.l2}}, environ={})
        pkg = load_package(models / "fingers-landmarks")
        fx = sample_features(cfg, pkg, "int8")
        assert isinstance(fx, LandmarkFeatures)
        if a.groups:
            fx.groups = a.groups.split(",")
        by_class: dict[int, list[int]] = {}
        for i in np.flatnonzero(lms.found & (lms.y >= 0)).tolist():
            by_class.setdefault(int(lms.y[i]), []).append(i)
        hands = {int(i): shifted(canonical(lms.landmarks[i], lms.handedness[i]), a.shift, rng)
                 for idx in by_class.values() for i in idx}
        captures: list[int] = []
        evaluate: list[int] = []
        for _, idx in sorted(by_class.items()):
            idx.sort(key=lambda i: hashlib.sha256(lms.names[i].encode()).hexdigest())
            captures += idx[:a.per_class]
            evaluate += idx[a.per_class:]

        def score(counter: LandmarkCounter) -> float:
            X = np.stack([landmark_features(hands[i], "right") for i in evaluate])
            pred = [counter.labels[j] for j in np.argmax(counter.head.predict(X), axis=1)]
            return float(np.mean([p == LABELS[int(lms.y[i])] for p, i in zip(pred, evaluate)]))

        before = score(LandmarkCounter(pkg, cfg.state_dir))
        with SampleStore(cfg.state_dir) as store:
            for i in captures:
                frame = read_image(str(files[i][0]))
                store.add(frame, LABELS[int(lms.y[i])], source="bench",
                          hand=StoredHand(fx.hand_model, hands[i].astype(np.float32), "right", 1.0))
            res = retrain(cfg, pkg, store, features=fx)
        after = score(LandmarkCounter(pkg, cfg.state_dir))
    out = {"shift": a.shift, "groups": fx.groups, "data": str(a.data), "captures_per_class": a.per_class,
           "evaluated": len(evaluate), "accuracy_before": round(before, 4), "accuracy_after": round(after, 4),
           "swapped": res.swapped, "gate": res.gate, "retrain_reason": res.reason,
           "retrain_seconds": res.duration_s, "steps": res.steps, "stopped": res.stopped, "command": " ".join(sys.argv)}
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    if a.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 3), dpi=90)
        ax.bar(["shipped head", f"after retrain\n({a.per_class}/class)"], [before, after], color=["#999", "#3a7"])
        ax.set_ylim(0, 1)
        ax.axhline(0.97, ls="--", color="k", lw=0.8)
        ax.set_title(f"fingers-landmarks, user '{a.shift}' ({Path(a.data).name}, n={len(evaluate)})", fontsize=8)
        for x, v in enumerate([before, after]):
            ax.text(x, v + 0.02, f"{v * 100:.1f} %", ha="center", fontsize=8)
        fig.tight_layout()
        fig.savefig(a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
