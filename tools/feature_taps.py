"""How far can a softmax head on frozen backbone features go under a camera shift?

For each shift of tools/personalize_bench.py and each feature tap of the int8 backbone
(the embedding it outputs, the pooled 512-d MobileNet features, the pooled conv_pw_11
activations; standardised on the base data), trains the same class-balanced softmax
regression the device uses (edge/softmax_regression.py) and scores the shifted test split:

  ceiling   trained on all shifted TRAIN-split photos (~850), no base data
  base      trained on the unshifted train+validation photos only (what the shipped data say)
  +10       base + the first 10 shifted test photos per class (as personalize_bench
            captures them), user share and L2 swept; scored on the other 87

Reads intermediate tensors with the interpreter's experimental_preserve_all_tensors, so it
is an analysis tool, not a product path. No TensorFlow.

Run: .venv/bin/python tools/feature_taps.py [--models-dir DIR] [--shift medium,strong]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from personalize_bench import DEFAULT_DATA, SHIFTS, shift, split_f  # noqa: E402

from edge.config import shipped_models_dir  # noqa: E402
from edge.runtime.preprocess import prepare, read_image  # noqa: E402
from edge.softmax_regression import accuracy, fit_softmax  # noqa: E402

TAPS = ("embedding", "pool", "pw11")


class Taps:
    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
        self.it.allocate_tensors()
        det = self.it.get_tensor_details()
        self.q = {d["index"]: d["quantization"] for d in det}
        self.idx = {
            "embedding": self.it.get_output_details()[0]["index"],
            "pool": next(d["index"] for d in det if d["name"].endswith("pool_1/Mean") and len(d["shape"]) == 2),
            "pw11": next(d["index"] for d in det if "conv_pw_11_relu" in d["name"] and len(d["shape"]) == 4),
        }
        self.inp = self.it.get_input_details()[0]["index"]

    def __call__(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        self.it.set_tensor(self.inp, prepare(rgb, 96, 96, 3)[None])
        self.it.invoke()
        out = {}
        for k, i in self.idx.items():
            s, z = self.q[i]
            x = (self.it.get_tensor(i).astype(np.float32) - z) * s
            out[k] = x.mean(axis=(1, 2))[0] if x.ndim == 4 else x[0]
        return out


def fit_and_score(X: np.ndarray, y: np.ndarray, Xe: np.ndarray, ye: np.ndarray,
                  w: np.ndarray | None = None, l2: float = 1e-2) -> float:
    r = fit_softmax(X, y, 6, l2=l2, sample_weight=w)
    return accuracy(r.W, r.b, Xe, ye)


def weights(y: np.ndarray, is_user: np.ndarray, share: float) -> np.ndarray:
    w = np.zeros(len(y))
    for c in np.unique(y):
        m = y == c
        mu, mb = m & is_user, m & ~is_user
        if mu.any() and mb.any():
            w[mu], w[mb] = share / mu.sum(), (1 - share) / mb.sum()
        else:
            w[m] = 1 / m.sum()
    return w


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", type=Path, default=shipped_models_dir())
    p.add_argument("--model", default="fingers-mobilenet")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--shift", default="medium,strong,rotated,noir")
    args = p.parse_args()
    taps = Taps(args.models_dir / args.model / "backbone_int8.tflite")
    photos = []
    for lab in range(6):
        for f in sorted((args.data / str(lab)).iterdir(), key=lambda f: hashlib.sha256(f.name.encode()).hexdigest()):
            if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                photos.append((lab, split_f(f.name), int(hashlib.sha256(f.name.encode()).hexdigest()[:8], 16),
                               read_image(str(f))))
    base = [(lab, taps(rgb)) for lab, f, _, rgb in photos if f < 0.85]
    yb = np.array([lab for lab, _ in base])
    for preset in args.shift.split(","):
        train: list[tuple[int, dict]] = []
        user: list[tuple[int, dict]] = []
        rest: list[tuple[int, dict]] = []
        seen: dict[int, int] = {}
        for lab, f, seed, rgb in photos:
            if 0.70 <= f < 0.85:
                continue
            x = taps(shift(rgb, seed, **SHIFTS[preset]))
            if f < 0.70:
                train.append((lab, x))
            else:
                seen[lab] = seen.get(lab, 0) + 1
                (user if seen[lab] <= 10 else rest).append((lab, x))
        print(f"[{preset}] {SHIFTS[preset]}", flush=True)
        y_rest = np.array([lab for lab, _ in rest])
        for tap in TAPS:
            mat = {name: np.array([x[tap] for _, x in rows], np.float32)
                   for name, rows in (("base", base), ("train", train), ("user", user), ("rest", rest))}
            mu, sd = mat["base"].mean(0), mat["base"].std(0) + 1e-3
            z = {k: (v - mu) / sd for k, v in mat.items()}
            ceiling = fit_and_score(z["train"], np.array([lab for lab, _ in train]), z["rest"], y_rest)
            base_only = fit_and_score(z["base"], yb, z["rest"], y_rest)
            Xboth = np.vstack([z["base"], z["user"]])
            y = np.r_[yb, [lab for lab, _ in user]]
            is_user = np.r_[np.zeros(len(base), bool), np.ones(len(user), bool)]
            grid = "  ".join(f"share {s:g} L2 {l2:g}: "
                             f"{fit_and_score(Xboth, y, z['rest'], y_rest, weights(y, is_user, s), l2):.3f}"
                             for s in (0.5, 0.1) for l2 in (1e-3, 1e-1))
            print(f"  {tap:9s} ceiling {ceiling:.3f}  base {base_only:.3f}  +10: {grid}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
