"""What a retrained head can do on a shifted camera, over many random draws of captures.

personalize_bench runs the real CLI once per shift, with the first N photos per class as the
captures: one draw, where one photo of the rest is ~1 point. This tool asks the narrower
question many times: the shifted photos of a split are embedded once by the shipped int8
backbone; for each of --draws random choices of --per-class captures per class, heads are
fitted as `fingercount retrain` fits them (base embeddings + captures, edge.retrain's
weights, warm start, edge.softmax_regression) and as a few variants, then scored on the
rest of the split. Every variant's head is scored, gate or not; "gated" is what a user
ends up with: `edge.retrain.retrain` run on a sample store of the captures (its gate
decides; the shipped head stays when it refuses).

Variants: product (what retrain fits), share 0.8 (captures carry 80 % of their label's
weight, not 50 %), l2 1e-2, aug x4 (each capture also as a mirrored copy and 3 random
crops with brightness jitter), ncm (nearest class mean of the captures alone), user only
(the captures alone, warm-started from the shipped head).

Run: .venv/bin/python tools/head_variants.py --shift medium,blur --split val [--draws 10]
Use --split val to choose a method and test to report it.
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
sys.path.insert(0, str(ROOT / "tools"))

from personalize_bench import DEFAULT_DATA, LABELS, SHIFTS, shift, split_f  # noqa: E402

import edge.retrain as retrain_mod  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.heads import shipped_head  # noqa: E402
from edge.runtime.classifier import Backbone  # noqa: E402
from edge.runtime.loader import open_package  # noqa: E402
from edge.runtime.preprocess import prepare, read_image  # noqa: E402
from edge.samples import SampleStore  # noqa: E402

SPLITS = {"val": (0.70, 0.85), "test": (0.85, 1.0)}  # converter/data.py's split_of
N_AUG = 4
Head = tuple[np.ndarray, np.ndarray]


def augment(rgb: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """A mirrored copy and N_AUG - 1 random 85-100 % crops, some mirrored, brightness jittered."""
    out = [rgb[:, ::-1]]
    h, w = rgb.shape[:2]
    for _ in range(N_AUG - 1):
        s = rng.uniform(0.85, 1.0)
        ch, cw = int(h * s), int(w * s)
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        v = rgb[y:y + ch, x:x + cw]
        if rng.random() < 0.5:
            v = v[:, ::-1]
        out.append(np.clip(v * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15), 0, 255).astype(np.uint8))
    return out


class Shifted:
    """One split's photos, shifted, embedded (and their augmented views)."""

    def __init__(self, data: Path, preset: str, split: str, backbone: Backbone):
        lo, hi = SPLITS[split]
        h, w, c = backbone.input_shape
        rng = np.random.default_rng(0)
        X, y, A, self.rgb = [], [], [], []
        for lab in LABELS:
            for p in sorted((data / lab).iterdir()):
                if p.suffix.lower() not in (".jpg", ".jpeg", ".png") or not lo <= split_f(p.name) < hi:
                    continue
                rgb = read_image(str(p))
                s = shift(rgb, int(hashlib.sha256(p.name.encode()).hexdigest()[:8], 16), **SHIFTS[preset])
                X.append(backbone.model(prepare(s, h, w, c)).copy())
                A.append(np.stack([backbone.model(prepare(v, h, w, c)).copy() for v in augment(s, rng)]))
                y.append(lab)
                self.rgb.append(s)
        self.X, self.y, self.A = np.asarray(X), np.asarray(y), A


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--shift", default="medium", help=f"comma-separated presets: {', '.join(SHIFTS)}")
    p.add_argument("--split", default="val", choices=sorted(SPLITS))
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)

    cfg = load_config(None)
    pkg = open_package(cfg)
    backbone = Backbone(pkg, "int8", cfg.model.threads)
    base_lab, Xb = retrain_mod.load_base_embeddings(pkg, "int8")
    shipped = shipped_head(pkg)
    classes = list(shipped.labels)

    def fit(Xu: np.ndarray, yu: np.ndarray, share: float = retrain_mod.USER_SHARE, l2: float = cfg.retrain.l2,
            base: bool = True) -> Head:
        n = len(Xb) if base else 0
        f = retrain_mod.fit_head(Xb[:n], base_lab[:n], Xu, list(yu), classes, shipped.W.copy(),
                                 shipped.b.copy(), l2, cfg.retrain.epochs, share=share)
        return f.W, f.b

    def ncm(Xu: np.ndarray, yu: np.ndarray) -> Head:
        M = np.stack([Xu[yu == c].mean(0) for c in classes])
        return 2 * M.T, -(M * M).sum(1)  # argmax of -|x - m|^2

    def gated(s: Shifted, cap: np.ndarray) -> tuple[Head, bool]:
        with tempfile.TemporaryDirectory() as tmp:
            c = cfg.model_copy(update={"state_dir": Path(tmp)})
            with SampleStore(c.state_dir) as store:
                for i in cap:
                    store.add(s.rgb[i], str(s.y[i]))
                r = retrain_mod.retrain(c, pkg, store, "int8", backbone=backbone)
            head, _ = retrain_mod.current_head(c, pkg)
        return (head.W, head.b), r.swapped

    report: dict[str, dict] = {}
    for preset in args.shift.split(","):
        s = Shifted(Path(args.data), preset, args.split, backbone)
        scores: dict[str, list[float]] = {}
        swaps = 0
        for d in range(args.draws):
            rng = np.random.default_rng(100 + d)
            cap = np.concatenate([rng.permutation(np.flatnonzero(s.y == c))[:args.per_class] for c in classes])
            rest = np.setdiff1d(np.arange(len(s.y)), cap)
            Xa = np.concatenate([s.X[cap]] + [s.A[i] for i in cap])
            ya = np.concatenate([s.y[cap]] + [[s.y[i]] * N_AUG for i in cap])
            Xc, yc = s.X[cap], s.y[cap]
            heads: dict[str, Head] = {
                "before": (shipped.W, shipped.b),
                "product": fit(Xc, yc),
                "share 0.8": fit(Xc, yc, share=0.8),
                "l2 1e-2": fit(Xc, yc, l2=1e-2),
                "aug x4": fit(Xa, ya),
                "ncm": ncm(Xc, yc),
                "user only": fit(Xc, yc, l2=1e-2, base=False),
            }
            heads["gated"], swapped = gated(s, cap)
            swaps += swapped
            for name, (W, b) in heads.items():
                pred = np.asarray(classes)[np.argmax(s.X[rest] @ W + b, axis=1)]
                scores.setdefault(name, []).append(float(np.mean(pred == s.y[rest])))
        report[preset] = {"photos": len(s.y), "scored": int(len(s.y) - len(classes) * args.per_class),
                          "swapped": swaps,
                          **{k: {"mean": float(np.mean(v)), "sd": float(np.std(v)),
                                 "min": min(v), "max": max(v)} for k, v in scores.items()}}
        print(f"{preset} ({args.split}, {len(s.y)} photos, {args.per_class}/class x {args.draws} draws): "
              + "  ".join(f"{k} {np.mean(v):.3f}±{np.std(v):.3f}" for k, v in scores.items())
              + f"  (gate swapped {swaps}/{args.draws})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "draws": args.draws,
                                               "per_class": args.per_class, "shifts": report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
