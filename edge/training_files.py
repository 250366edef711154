"""The training images a model package records (sha256 of each file) and the check that a
folder being scored is not made of them: accuracy on a model's own training photos says how
well it learned them, not how it does on photos it has not seen."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from edge.runtime.package import sha256_file

FILE = "training_files.txt"
HEADER = ("# fingercount training files: the images that trained this model (train and validation "
          "splits)\n# sha256 split name\n")


sha256_path = sha256_file  # one file hash for packages and training images


def render(entries: Iterable[tuple[str, str, str]]) -> bytes:
    """(sha256, split, name) lines, sorted by name: one small text file, diffable."""
    rows = sorted(entries, key=lambda e: (e[2], e[1]))
    return (HEADER + "".join(f"{sha} {split} {name}\n" for sha, split, name in rows)).encode()


def parse(data: bytes) -> dict[str, str]:
    """sha256 -> name, from a training_files.txt."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        sha, _, rest = line.partition(" ")
        out[sha] = rest.partition(" ")[2]
    return out


def package_hashes(root: Path, provenance: dict) -> Optional[dict[str, str]]:
    """The package's training-file hashes (sha256 -> name), or None where it records none or
    the file does not match model.json (then nothing is claimed either way)."""
    entry = provenance.get("training_files")
    if not isinstance(entry, dict) or not entry.get("file"):
        return None
    path = root / str(entry["file"])
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if entry.get("sha256") and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return None
    return parse(data)


def overlap(paths: Iterable[Path], hashes: dict[str, str]) -> list[Path]:
    """The files among paths whose content is one of the training images."""
    found = []
    for p in paths:
        try:
            if sha256_path(p) in hashes:
                found.append(p)
        except OSError:
            continue
    return found
