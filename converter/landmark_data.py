"""Hand landmarks of a folder of photos, through the edge's own hand stage, cached.

The cache (one .npz per hand stage) is keyed by each file's content sha256; the file name
carries the hand stage's identity: the sha256 of both hand models' files, the precision
and the hand stage's code (edge/hands/*.py but features.py), so a changed model or
decoder never reuses old landmarks, and a rebuild with neither changed reads no photo
through the models again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

import edge.hands as hands_pkg
from edge.hands import HandStage, load_hand_stage
from edge.runtime.package import resolve_package, sha256_file
from edge.runtime.preprocess import read_image

log = logging.getLogger(__name__)

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fingercount" / "landmarks"


@dataclass(frozen=True)
class HandSpec:
    models_dir: Path
    palm: str = "palm-detection-lite"
    landmark: str = "hand-landmark-full"
    precision: str = "fp32"

    def identity(self) -> dict:
        """What the landmarks depend on: both models' file sha256 and the hand stage's code."""
        out: dict = {"palm": self.palm, "landmark": self.landmark, "precision": self.precision}
        for key, spec in (("palm", self.palm), ("landmark", self.landmark)):
            pkg = resolve_package(spec, self.models_dir)
            out[f"{key}_sha256"] = pkg.variants[self.precision]["sha256"]
            out[f"{key}_version"] = pkg.version
        code = hashlib.sha256()
        for p in sorted(Path(hands_pkg.__file__).parent.glob("*.py")):
            if p.name != "features.py":
                code.update(p.name.encode() + p.read_bytes())
        out["code_sha256"] = code.hexdigest()
        out["sha256"] = hashlib.sha256(repr(sorted(out.items())).encode()).hexdigest()
        return out

    def stage(self) -> HandStage:
        # tracking off: every photo is found from scratch, as a first frame is
        return load_hand_stage(self.models_dir, self.palm, self.landmark, self.precision, threads=1,
                               tracking=False)


@dataclass
class Landmarks:
    """Per photo: its landmarks (NaN where no hand was found), handedness ('' none), score."""

    names: list[str]
    y: np.ndarray           # label index, -1 for a photo with no label (no-hand)
    landmarks: np.ndarray   # (N, 21, 3) float32
    handedness: list[str]
    score: np.ndarray       # (N,) float32, 0 where none

    @property
    def found(self) -> np.ndarray:
        return np.isfinite(self.landmarks[:, 0, 0])

    def take(self, idx: np.ndarray | list[int]) -> Landmarks:
        idx = list(np.asarray(idx, dtype=int))
        return Landmarks([self.names[i] for i in idx], self.y[idx], self.landmarks[idx],
                         [self.handedness[i] for i in idx], self.score[idx])


def pad_frame(rgb: np.ndarray, pad: float) -> np.ndarray:
    """rgb with a margin of pad x its longer side on every side, the border pixels repeated
    (0: unchanged). Studio photos whose hand fills the frame get room around it."""
    if pad <= 0:
        return rgb
    m = int(round(pad * max(rgb.shape[:2])))
    return cv2.copyMakeBorder(rgb, m, m, m, m, cv2.BORDER_REPLICATE)


class LandmarkCache:
    def __init__(self, spec: HandSpec, cache_dir: Optional[Path] = None, pad: float = 0.0):
        """pad: each photo goes through the hand stage inside pad_frame(photo, pad); the
        landmarks are then in the padded photo's pixels (a separate cache file)."""
        self.spec = spec
        self.ident = spec.identity()
        self.pad = float(pad)
        tag = f"-pad{self.pad:g}" if self.pad > 0 else ""
        self.path = Path(cache_dir or CACHE_DIR) / f"landmarks-{self.ident['sha256'][:16]}{tag}.npz"
        self.rows: dict[str, tuple[np.ndarray, str, float]] = {}
        self.hits = 0
        self.computed = 0
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    for k, lm, h, s in zip(z["keys"], z["landmarks"], z["handedness"], z["score"]):
                        self.rows[str(k)] = (lm.astype(np.float32), str(h), float(s))
            except (OSError, KeyError, ValueError) as e:  # a damaged cache costs time, not the build
                log.warning("ignoring the landmark cache %s (%s)", self.path, e)
        self._stage: Optional[HandStage] = None

    def get(self, path: Path) -> tuple[np.ndarray, str, float]:
        key = sha256_file(path)
        if key in self.rows:
            self.hits += 1
            return self.rows[key]
        if self._stage is None:
            self._stage = self.spec.stage()
        self._stage.reset()
        hand = self._stage(pad_frame(read_image(str(path)), self.pad))
        row = ((np.full((21, 3), np.nan, np.float32), "", 0.0) if hand is None else
               (np.asarray(hand.landmarks, np.float32), hand.handedness, float(hand.score)))
        self.rows[key] = row
        self.computed += 1
        if self.computed % 100 == 0:
            print(f"hand landmarks: {self.computed} photos through the hand stage", file=sys.stderr,
                  flush=True)
            self.save()
        return row

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.rows)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys), landmarks=np.stack([self.rows[k][0] for k in keys]),
                     handedness=np.array([self.rows[k][1] for k in keys]),
                     score=np.array([self.rows[k][2] for k in keys], np.float32))
        os.replace(tmp, self.path)

    def extract(self, files: list[tuple[Path, int, str]]) -> Landmarks:
        """(path, label index or -1, name) -> Landmarks, in the order given."""
        lms, hs, ss = [], [], []
        for path, _, _ in files:
            lm, h, s = self.get(path)
            lms.append(lm)
            hs.append(h)
            ss.append(s)
        if self.computed:
            self.save()
        return Landmarks([n for _, _, n in files], np.array([k for _, k, _ in files], np.int64),
                         np.stack(lms) if lms else np.zeros((0, 21, 3), np.float32), hs,
                         np.array(ss, np.float32))
