"""Personalisation benchmark: does on-device retraining fix a camera the model was not trained for?

1. Take the TEST split of the hand data (classes 0-5; f = int(sha256(name)[:8], 16) / 2**32 >= 0.85)
   and make a shifted copy that hurts the shipped model. Presets (--shift):
     background: the photos' bright background replaced by a teal/magenta gradient with noise;
     medium:     the same, plus the hand shrunk to 75 % at a random offset and a warm colour
                 cast RGB x (1.25, 0.95, 0.70) + (10, 0, -5) (the issue's example shift);
     strong:     as medium, with the hand shrunk to 60 %;
     rotated:    background, camera mounted a quarter turn clockwise;
     noir:       background, the look of a Pi NoIR camera (grey-magenta, flat, grainy);
     small:      background, hand shrunk to 60 % at a random offset, no colour cast;
     blur:       background, out of focus (Gaussian sigma 2.5 px on the 100 px photo: a
                 fixed-focus camera with the hand closer than its focus distance);
     dusk:       dim light: gamma 1.8, 55 % brightness, bluish, sensor noise (no background change);
     lowcontrast: flat, washed-out exposure (40 % contrast, +30 brightness, noise);
     green:      green fluorescent light, RGB x (0.75, 1.15, 0.65) + (0, 15, 0);
     mirror:     the other hand (the photo mirrored left-right);
     lowres:     a 32x32 camera image scaled back up;
     angle:      the camera looks up at the hand at an angle (keystone: the top of the image
                 30 % narrower on each side); angle25, angle20, angle10: the same at
                 smaller angles (25, 20, 10 %);
     tilt:       the camera rolled 30 degrees clockwise.
2. Per class, the first 10 shifted images (ordered by sha256 of the file name) are the
   user's captures; the rest of the shifted set is the evaluation set.
3. Through the real CLI: `fingercount eval` (before), `fingercount capture --camera replay:DIR@0`
   5 per class, `fingercount retrain`, `eval`; 5 more per class, `retrain`, `eval`.
4. Timing: 600 user samples (embeddings cached after a first retrain) + base embeddings:
   the duration of the second `fingercount retrain`.

Run: .venv/bin/python tools/personalize_bench.py [--data DIR] [--model NAME] [--json F]
No TensorFlow needed; everything runs on the edge package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.runtime.preprocess import read_image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sign-language-digits"
LABELS = [str(i) for i in range(6)]


def split_f(name: str) -> float:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 2**32


SHIFTS: dict[str, dict[str, Any]] = {
    "background": {"scale": 1.0, "cast": False},
    "medium": {"scale": 0.75, "cast": True},
    "strong": {"scale": 0.6, "cast": True},
    "rotated": {"scale": 1.0, "cast": False, "rotate": 1},
    "noir": {"scale": 1.0, "cast": False, "noir": True},
    "small": {"scale": 0.6, "cast": False},
    "blur": {"scale": 1.0, "cast": False, "blur": 2.5},
    "dusk": {"scale": 1.0, "cast": False, "background": False, "light": "dusk"},
    "lowcontrast": {"scale": 1.0, "cast": False, "background": False, "light": "flat"},
    "green": {"scale": 1.0, "cast": False, "background": False, "light": "green"},
    "mirror": {"scale": 1.0, "cast": False, "background": False, "light": "mirror"},
    "lowres": {"scale": 1.0, "cast": False, "background": False, "light": "lowres"},
    "angle": {"scale": 1.0, "cast": False, "background": False, "light": "angle"},
    "angle25": {"scale": 1.0, "cast": False, "background": False, "light": "angle", "keystone": 0.25},
    "angle20": {"scale": 1.0, "cast": False, "background": False, "light": "angle", "keystone": 0.2},
    "angle10": {"scale": 1.0, "cast": False, "background": False, "light": "angle", "keystone": 0.1},
    "tilt": {"scale": 1.0, "cast": False, "background": False, "light": "tilt"},
}
SHIFT_TEXT = {
    "background": "bright background -> teal/magenta gradient + noise",
    "medium": "hand scaled to 75 % at a random offset, bright background -> teal/magenta gradient "
              "+ noise, colour cast RGB x (1.25, 0.95, 0.70) + (10, 0, -5)",
    "rotated": "camera mounted a quarter turn clockwise, coloured background",
    "noir": "NoIR-camera look (grey-magenta, flat, grainy), coloured background",
    "small": "hand scaled to 60 % at a random offset, bright background -> teal/magenta gradient + noise",
    "blur": "out of focus (Gaussian blur sigma 2.5 px on the 100 px photos), coloured background",
    "dusk": "dim bluish light: gamma 1.8, 55 % brightness, sensor noise sigma 7",
    "lowcontrast": "washed-out exposure: 40 % contrast, +30 brightness, noise sigma 4",
    "green": "green fluorescent light: RGB x (0.75, 1.15, 0.65) + (0, 15, 0)",
    "mirror": "the other hand: the photo mirrored left-right",
    "lowres": "a 32x32 image scaled back up (a cheap, low-resolution camera)",
    "angle": "the camera looks up at the hand at an angle: keystone, the top 30 % narrower on each side",
    "angle25": "as angle, a smaller angle: the top 25 % narrower on each side",
    "angle20": "as angle, a smaller angle: the top 20 % narrower on each side",
    "angle10": "as angle, a smaller angle: the top 10 % narrower on each side",
    "tilt": "the camera rolled 30 degrees clockwise",
    "strong": "hand scaled to 60 % at a random offset, bright background -> teal/magenta gradient "
              "+ noise, colour cast RGB x (1.25, 0.95, 0.70) + (10, 0, -5)",
}


def shift(rgb: np.ndarray, seed: int, scale: float = 0.6, cast: bool = True,
          rotate: int = 0, noir: bool = False, blur: float = 0.0, background: bool = True,
          light: str = "", keystone: float = 0.3) -> np.ndarray:
    """Coloured background, optionally a smaller off-centre hand, a colour cast, a camera
    mounted `rotate` quarter turns clockwise, a NoIR camera's look, defocus, dim or flat
    light (deterministic)."""
    rng = np.random.default_rng(seed)
    if not background:
        return relight(rgb, light, rng, keystone)
    if rotate:
        rgb = np.ascontiguousarray(np.rot90(rgb, -rotate))
    h, w = rgb.shape[:2]
    img = rgb.astype(np.float32)
    # the photos' background is bright and grey: it becomes the coloured background
    mx, mn = img.max(axis=2), img.min(axis=2)
    bg_mask = cv2.GaussianBlur(((mn > 130) & (mx - mn < 45)).astype(np.float32), (5, 5), 0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = ((xx + yy) / (h + w))[:, :, None]
    teal, magenta = np.array([30, 120, 110], np.float32), np.array([150, 60, 140], np.float32)
    canvas = teal * (1 - t) + magenta * t + rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    # smaller hand at a random offset
    sh, sw = int(h * scale), int(w * scale)
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    m = cv2.resize(bg_mask, (sw, sh), interpolation=cv2.INTER_AREA)[:, :, None]
    oy = int(rng.integers(0, h - sh + 1))
    ox = int(rng.integers(0, w - sw + 1))
    region = canvas[oy:oy + sh, ox:ox + sw]
    canvas[oy:oy + sh, ox:ox + sw] = small * (1 - m) + region * m
    if cast:  # warm colour cast
        canvas = canvas * np.array([1.25, 0.95, 0.7], np.float32) + np.array([10, 0, -5], np.float32)
    if noir:  # no IR filter: washed-out magenta, flat, grainy
        lum = canvas @ np.array([0.299, 0.587, 0.114], np.float32)
        canvas = (lum[:, :, None] * 0.6 + 60) * np.array([1.15, 0.8, 1.1], np.float32)
        canvas = canvas + rng.normal(0, 10, (h, w, 1)).astype(np.float32)
    if blur:
        canvas = cv2.GaussianBlur(canvas, (0, 0), blur)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def relight(rgb: np.ndarray, light: str, rng: np.random.Generator, keystone: float = 0.3) -> np.ndarray:
    """The photo as it is, seen differently: dim or flat light, a green cast, the other
    hand, a low-resolution camera, a camera at an angle or rolled."""
    x: np.ndarray = rgb.astype(np.float32)
    if light == "dusk":
        x = ((x / 255) ** 1.8) * 0.55 * np.array([0.9, 0.95, 1.15], np.float32) * 255
        x = x + rng.normal(0, 7, x.shape).astype(np.float32)
    elif light == "flat":
        x = (x - x.mean()) * 0.4 + x.mean() + 30 + rng.normal(0, 4, x.shape).astype(np.float32)
    elif light == "green":
        x = x * np.array([0.75, 1.15, 0.65], np.float32) + np.array([0, 15, 0], np.float32)
    elif light == "mirror":
        x = x[:, ::-1]
    elif light == "lowres":
        small = cv2.resize(rgb, (32, 32), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, rgb.shape[1::-1], interpolation=cv2.INTER_LINEAR).astype(np.float32)
    elif light in ("angle", "tilt"):
        h, w = rgb.shape[:2]
        if light == "angle":
            src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
            dst = np.array([[keystone * w, 0], [(1 - keystone) * w, 0], [w, h], [0, h]], np.float32)
            warp = cv2.getPerspectiveTransform(src, dst)
        else:
            warp = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), -30, 1.0), [0, 0, 1]])
        x = cv2.warpPerspective(rgb, warp, (w, h), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


def make_sets(data: Path, work: Path, n_capture: int, labels: list[str],
              split: tuple[float, float] = (0.85, 1.0), preset: str = "strong") -> tuple[dict[str, list[Path]], Path]:
    """Shifted images: (per-label capture pool in order, evaluation dir with the rest)."""
    pool: dict[str, list[Path]] = {}
    evald = work / "eval"
    for lab in labels:
        files = sorted((p for p in (data / lab).iterdir()
                        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and split[0] <= split_f(p.name) < split[1]),
                       key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
        pool[lab] = []
        for i, p in enumerate(files):
            rgb = read_image(str(p))
            out = shift(rgb, int(hashlib.sha256(p.name.encode()).hexdigest()[:8], 16), **SHIFTS[preset])
            if i < n_capture:
                dst = work / "pool" / lab / f"{i:03d}-{p.stem}.jpg"
                pool[lab].append(dst)
            else:
                dst = evald / lab / f"{p.stem}.jpg"
            write_rgb(dst, out)
    return pool, evald


def fc(env: dict, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"fingercount {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return r


def evaluate(env: dict, evald: Path, out: Path) -> dict:
    fc(env, "eval", "--data", str(evald), "--json", str(out))
    return json.loads(out.read_text())


def capture(env: dict, files: list[Path], label: str, work: Path) -> None:
    cam = work / "cam" / label
    shutil.rmtree(cam, ignore_errors=True)
    cam.mkdir(parents=True)
    for p in files:
        shutil.copy(p, cam / p.name)
    fc(env, "capture", "--label", label, "--count", str(len(files)), "--interval", "0",
       "--camera", f"replay:{cam}@0")


def base_env(args: argparse.Namespace, state: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")}
    env.update({"FINGERCOUNT_STATE_DIR": str(state), "FINGERCOUNT_MODEL__NAME": args.model,
                "FINGERCOUNT_MODEL__PRECISION": args.precision, "FINGERCOUNT_MODEL__THREADS": str(args.threads),
                "PYTHONPATH": str(ROOT)})
    if args.models_dir:
        env["FINGERCOUNT_MODELS_DIR"] = str(args.models_dir)
    return env


def run_shift(args: argparse.Namespace, work: Path, preset: str) -> dict:
    """Fresh state; eval before; capture + retrain + eval after each step of --per-class."""
    shutil.rmtree(work, ignore_errors=True)
    env = base_env(args, work / "state")
    steps = sorted(int(x) for x in args.per_class.split(","))
    pool, evald = make_sets(Path(args.data), work, steps[-1], LABELS, preset=preset)
    report: dict = {"shift": SHIFT_TEXT[preset],
                    "eval_n": sum(len(list((evald / lab).iterdir())) for lab in LABELS), "steps": []}
    base = evaluate(env, evald, work / "eval-before.json")
    unshifted = None
    if args.unshifted_check:
        clean = work / "clean"
        for lab in LABELS:
            for p in (evald / lab).iterdir():
                src = next((Path(args.data) / lab).glob(p.stem + ".*"))
                (clean / lab).mkdir(parents=True, exist_ok=True)
                shutil.copy(src, clean / lab / src.name)
        unshifted = evaluate(env, clean, work / "eval-clean.json")["accuracy"]
    report["accuracy_unshifted_before"] = unshifted
    report["accuracy_before"] = base["accuracy"]
    print(f"[{preset}] shifted eval set: {report['eval_n']} images; shipped model accuracy {base['accuracy']:.3f}"
          + (f" (same images unshifted: {unshifted:.3f})" if unshifted is not None else ""), flush=True)
    have = 0
    for n in steps:
        for lab in LABELS:
            capture(env, pool[lab][have:n], lab, work)
        have = n
        r = fc(env, "retrain", "--json", str(work / f"retrain-{n}.json"))
        res = json.loads((work / f"retrain-{n}.json").read_text())
        after = evaluate(env, evald, work / f"eval-{n}.json")
        step = {"per_class": n, "swapped": res["swapped"], "reason": res["reason"],
                "holdout_before": res["accuracy_before"], "holdout_after": res["accuracy_after"],
                "retrain_s": res["duration_s"], "accuracy_after": after["accuracy"]}
        report["steps"].append(step)
        print(f"[{preset}] {n:>3} per class: retrain {res['duration_s']:.2f} s "
              f"({r.stdout.strip().splitlines()[-1]}); accuracy on the rest of the shifted set "
              f"{after['accuracy']:.3f}", flush=True)
    return report


def run(args: argparse.Namespace) -> dict:
    work = Path(args.work or tempfile.mkdtemp(prefix="personalize-bench-"))
    report: dict = {"model": args.model, "precision": args.precision, "data": str(args.data),
                    "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "shifts": {}}
    for preset in args.shift.split(","):
        report["shifts"][preset] = run_shift(args, work / preset, preset)
    if args.timing_samples:
        report["timing"] = timing(base_env(args, work / "state-timing"), Path(args.data), work,
                                  args.timing_samples)
    return report


def timing(env: dict, data: Path, work: Path, n: int) -> dict:
    """n user samples (shifted train images) -> retrain twice; the second has all embeddings cached."""
    sys.path.insert(0, str(ROOT))
    from edge.samples import SampleStore

    state = work / "state-timing"
    shutil.rmtree(state, ignore_errors=True)
    per = -(-n // len(LABELS))
    added = 0
    with SampleStore(state) as store:
        for lab in LABELS:
            files = sorted(p for p in (data / lab).iterdir() if split_f(p.name) < 0.70)[:per]
            for p in files:
                if added >= n:
                    break
                rgb = read_image(str(p))
                store.add(shift(rgb, added, **SHIFTS["strong"]), lab, source="bench")
                added += 1
    env = {**env, "FINGERCOUNT_STATE_DIR": str(state), "FINGERCOUNT_RETRAIN__MAX_SECONDS": "600"}
    out = {}
    for name in ("first", "cached"):
        t0 = time.monotonic()
        fc(env, "retrain", "--force", "--json", str(work / f"timing-{name}.json"))
        wall = time.monotonic() - t0
        res = json.loads((work / f"timing-{name}.json").read_text())
        out[name] = {"retrain_s": res["duration_s"], "embeddings_computed": res["embeddings_computed"],
                     "timing_s": res["timing_s"], "base_samples": res["base_samples"],
                     "user_samples": sum(res["samples_per_label"].values()), "process_wall_s": round(wall, 2)}
        print(f"timing ({name}): {out[name]['user_samples']} user + {res['base_samples']} base samples, "
              f"{res['embeddings_computed']} embeddings computed, retrain {res['duration_s']:.2f} s "
              f"(process {wall:.1f} s)", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="class folders 0-5 (sign-language-digits)")
    p.add_argument("--model", default="fingers-mobilenet")
    p.add_argument("--models-dir", help="default: the shipped models/")
    p.add_argument("--precision", default="int8", choices=["int8", "fp16", "fp32"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--per-class", default="5,10", help="captures per class after which to retrain")
    p.add_argument("--shift", default="background,medium,strong", help=f"comma-separated presets: {', '.join(SHIFTS)}")
    p.add_argument("--timing-samples", type=int, default=600, help="0 to skip the timing part")
    p.add_argument("--unshifted-check", action="store_true", help="also score the unshifted eval images")
    p.add_argument("--work", help="working directory (default: a new temp dir)")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    rep = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
