"""Hand crops for the crop classifiers (recipe `input: {crop: hand}`): train what the edge serves.

On a device a crop classifier never sees the frame: edge.counting.crop_scores feeds it
`Hand.square_crop(rgb, size)` of the hand the hand stage found. So a crop recipe runs that
same hand stage (edge.hands.load_hand_stage, tracking off: every photo is a first frame) on
every photo and trains on that same function's output. Photos where no hand is found are
left out of training and validation (counted, listed in provenance); the test split and the
real-world set keep their full photos and are scored through edge.counting.HandCounter, as
`fingercount eval` scores them, so a photo with no hand found is wrong there.

The hand stage's landmarks come from converter.landmark_data's cache (keyed by file sha256
and the hand stage's identity), so a rebuild with the same hand models reads no photo
through them again.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from converter.data import Dataset, Split
from converter.errors import ConvertError
from converter.landmark_data import HandSpec, LandmarkCache, pad_frame
from edge.counting import HandCounter
from edge.hands import Hand, HandStage
from edge.hands.hand import landmark_box
from edge.runtime.classifier import Classifier
from edge.runtime.package import ModelPackage

CROP_HAND = "hand"


def is_crop_recipe(r: Any) -> bool:
    return str(r.get("input.crop") or "") == CROP_HAND


def hand_spec(r: Any) -> HandSpec:
    """The hand stage a crop recipe runs: its `hands:` section, else the edge's defaults
    (config hands: palm-detection-lite, hand-landmark-full, fp32) from the shipped models/."""
    from edge.config import HandsSection, shipped_models_dir

    h, d = r.get("hands") or {}, HandsSection()
    return HandSpec(Path(h.get("models_dir") or shipped_models_dir()), h.get("palm", d.palm),
                    h.get("landmark", d.landmark), h.get("precision", d.precision))


def train_pad(r: Any) -> float:
    """hands.pad: the margin (a fraction of the photo's side, border repeated) put around each
    training photo before the hand stage and the crop. The studio photos' hands fill their
    100x100 frame: there palm detection misses many (82 % found), and the 1.5x square crop
    runs off the photo into zero padding, black borders no camera frame has."""
    return float((r.get("hands") or {}).get("pad", 0.0))


def open_cache(spec: HandSpec, cache_dir: Optional[Path] = None, pad: float = 0.0) -> LandmarkCache:
    try:
        return LandmarkCache(spec, cache_dir, pad)
    except Exception as e:  # a missing or corrupt hand package: one line, before any work
        raise ConvertError(f"input.crop hand: the hand stage ({spec.palm}, {spec.landmark} "
                           f"{spec.precision} in {spec.models_dir}) cannot be loaded: {e}") from e


def hand_of(row: tuple[np.ndarray, str, float]) -> Optional[Hand]:
    """A cached hand-stage row -> the Hand the stage returned (None: no hand). Its box is the
    landmarks' box, as HandStage makes it, so square_crop gives the same pixels."""
    lm, handedness, score = row
    if not np.isfinite(lm).all():
        return None
    return Hand(score=float(score), box=landmark_box(lm), handedness=handedness, landmarks=lm,
                tracked=False)


@dataclass
class CropInfo:
    """What cropping did to a dataset (the card and provenance say it)."""

    size: int
    pad: float = 0.0
    no_hand: dict[str, list[str]] = field(default_factory=dict)  # split -> names left out
    test_crops: list[np.ndarray] = field(default_factory=list)    # crops of the test photos with a hand
    test_crop_y: list[int] = field(default_factory=list)

    @property
    def left_out(self) -> int:
        return sum(len(v) for s, v in self.no_hand.items() if s != "test")


def crop_split(split: Split, root: Path, size: int, cache: LandmarkCache, pad: float = 0.0
               ) -> tuple[Split, list[str]]:
    """(the split's hand crops, names of the photos with no hand found); pad: the photos go
    through the hand stage and the crop inside pad_frame (the cache was made with it)."""
    frames, ys, names, missed = [], [], [], []
    for frame, k, name in zip(split.frames, split.y, split.names):
        hand = hand_of(cache.get(root / name))
        if hand is None:
            missed.append(name)
            continue
        frames.append(hand.square_crop(pad_frame(frame, pad), size))  # the edge's crop_scores
        ys.append(int(k))
        names.append(name)
    return Split(frames, np.array(ys, np.int64), names), missed


def crop_dataset(ds: Dataset, size: int, cache: LandmarkCache) -> tuple[Dataset, CropInfo]:
    """Train and validation become hand crops (no-hand photos left out); test keeps the full
    photos (scored through the hand stage); info has the test crops too (for checks that
    compare two classifiers on the same input)."""
    root = Path(ds.source)
    info = CropInfo(size, cache.pad)
    hits, computed = cache.hits, cache.computed
    parts = {}
    for s in ("train", "val", "test"):
        parts[s], info.no_hand[s] = crop_split(getattr(ds, s), root, size, cache, cache.pad)
    info.test_crops, info.test_crop_y = parts["test"].frames, [int(k) for k in parts["test"].y]
    if cache.computed:
        cache.save()
    n = sum(len(getattr(ds, s)) for s in ("train", "val", "test"))
    missed = sum(len(v) for v in info.no_hand.values())
    print(f"hand crops {size}x{size}: {n - missed} of {n} photos have a hand "
          f"({cache.hits - hits} from the cache {cache.path}, {cache.computed - computed} through "
          "the hand stage); "
          f"{info.left_out} train/validation photos without one left out", file=sys.stderr, flush=True)
    return Dataset(ds.labels, parts["train"], parts["val"], ds.test, ds.source, ds.split_rule,
                   skipped=ds.skipped), info


class MemoStage(HandStage):
    """The build's hand stage: a real HandStage (tracking off) that remembers its answer per
    frame content, so scoring three precisions (and the corruptions) runs each photo through
    the hand models once. Deterministic: the same frame always gives the same hand."""

    def __init__(self, stage: HandStage):
        super().__init__(stage.palm, stage.landmark, tracking=False, min_detection=stage.min_detection,
                         min_presence=stage.min_presence)
        self._memo: dict[bytes, tuple[Optional[Hand], float]] = {}

    def __call__(self, frame: np.ndarray) -> Optional[Hand]:
        key = hashlib.sha256(repr((frame.shape, str(frame.dtype))).encode() + frame.tobytes()).digest()
        if key not in self._memo:
            hand = super().__call__(frame)
            self._memo[key] = (hand, self.last_score)
        hand, self.last_score = self._memo[key]
        return hand


def counter_factory(spec: HandSpec) -> Callable[[ModelPackage, str], HandCounter]:
    """pkg, precision -> the edge's HandCounter around that variant (one shared hand stage)."""
    stage = MemoStage(spec.stage())

    def make(pkg: ModelPackage, precision: str) -> HandCounter:
        return HandCounter(stage, Classifier(pkg, precision, threads=2), threads=2)
    return make


def package_counter(pkg: ModelPackage, precision: str, threads: int = 2) -> HandCounter:
    """A crop package behind the hand stage it was trained with (provenance.crop.hands, from the
    shipped models/): what `fingercount-convert evaluate` scores, as `fingercount eval` does."""
    from edge.config import HandsSection, shipped_models_dir
    from edge.hands import load_hand_stage

    h, d = (pkg.provenance.get("crop") or {}).get("hands") or {}, HandsSection()
    stage = load_hand_stage(shipped_models_dir(), h.get("palm", d.palm), h.get("landmark", d.landmark),
                            h.get("precision", d.precision), threads=threads, tracking=False)
    return HandCounter(stage, Classifier(pkg, precision, threads=threads), threads=threads)


def is_crop_package(pkg: ModelPackage) -> bool:
    return str((pkg.meta.get("input") or {}).get("crop") or "") == CROP_HAND


def card_note(spec: HandSpec, info: CropInfo, full_info: CropInfo, shown: int = 8) -> str:
    """The model card's line on how the training images were made."""
    ident = spec.identity()
    left = [n for s in ("train", "val") for n in full_info.no_hand[s]]
    names = ", ".join(f"`{n}`" for n in left[:shown]) + (f" and {len(left) - shown} more" if len(left) > shown else "")
    pad = (f"with a margin of {full_info.pad:g} x its side around it (border pixels repeated: the "
           "studio photos' hands fill the frame), " if full_info.pad > 0 else "")
    return (f"**Trained on hand crops**: every photo went through the edge's hand stage "
            f"({ident['palm']} + {ident['landmark']} {ident['precision']}, tracking off, one still at a "
            f"time) {pad}and the model learnt from `Hand.square_crop(photo, {info.size})` of the hand "
            "it found, the same function that makes its input on a device (edge/counting.py crop_scores). "
            f"{full_info.left_out} training/validation photo{'s' if full_info.left_out != 1 else ''} "
            f"with no hand found {'were' if full_info.left_out != 1 else 'was'} left out"
            + (f" ({names}; provenance.crop.no_hand_files)" if left else "")
            + f". Test photos are scored whole, through the hand stage (HandCounter, as `fingercount "
            f"eval`): {len(info.no_hand['test'])} of the {len(info.no_hand['test']) + len(info.test_crops)} "
            "test photos had no hand found, and count as wrong.")


def found_note(metrics: dict) -> str:
    """The card's line separating the hand stage from the classifier on the test split."""
    parts = []
    for prec, m in metrics.items():
        conf = np.asarray(m["confusion"])
        found = int(conf.sum())
        acc = float(np.trace(conf)) / found if found else 0.0
        parts.append(f"{prec} {m['accuracy'] * 100:.2f} % of all {m['n']}, "
                     f"{acc * 100:.2f} % of the {found} with a hand found")
    return ("Test split through the hand stage: " + "; ".join(parts) + ". The first figure is what "
            "`fingercount eval` reports (no hand found = wrong); the second is the classifier's own.")


def provenance(spec: HandSpec, full_info: CropInfo) -> dict:
    """model.json's provenance.crop: the hand stage's identity and the photos left out."""
    return {"input": CROP_HAND, "size": full_info.size, "train_pad": full_info.pad,
            "hands": {k: v for k, v in spec.identity().items() if k != "sha256"},
            "tracking": False,
            "no_hand_count": {s: len(v) for s, v in full_info.no_hand.items()},
            "no_hand_files": {s: v for s, v in full_info.no_hand.items() if s != "test"}}
