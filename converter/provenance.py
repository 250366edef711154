"""What a model package records about its making: the recipe by its committed path, and the
training images by content (sha256), so `fingercount eval` can tell when it scores them."""

from __future__ import annotations

from pathlib import Path

import yaml

from converter.data import Dataset
from edge.training_files import sha256_path

REPO = Path(__file__).resolve().parents[1]


def recipe_reference(path: Path, name: str) -> str:
    """The recipe as provenance names it: its path in the repository when it is the committed
    file, or a copy equal to it; never a temporary path that means nothing later."""
    committed = REPO / "converter" / "recipes" / f"{name}.yaml"
    p = Path(path).resolve()
    try:
        return p.relative_to(REPO).as_posix()
    except ValueError:
        pass
    try:
        same = committed.is_file() and yaml.safe_load(committed.read_text()) == yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError):
        same = False
    rel = committed.relative_to(REPO).as_posix()
    if same:
        return rel
    return f"a copy of {rel} with changes (file {p.name}; provenance.settings is what ran)"


def training_entries(ds: Dataset) -> list[tuple[str, str, str]]:
    """(sha256, split, name) of every image that trained the model (train and validation, all
    pre-training classes too), from class folders; none for generated data (sklearn, MNIST)."""
    root = Path(ds.source)
    out = []
    for split, part in (("train", ds.train), ("val", ds.val)):
        for name in part.names:
            f = root / name
            if f.is_file():
                out.append((sha256_path(f), split, name))
    return out


def recorded_split(pkg_dir: Path, data: Path) -> list[tuple[str, str, str]]:
    """A built package's training files, recomputed from its recorded split rule on `data`.
    Exact only when the folder is the one it was built from: ConvertError unless the recomputed
    test split has, class by class, the sizes model.json's metrics record."""
    import json

    from converter.data import SPLIT_RULE, class_folder_files, split_of
    from converter.errors import ConvertError

    meta = json.loads((pkg_dir / "model.json").read_text())
    prov = meta["provenance"]
    if prov.get("split_rule") != SPLIT_RULE or prov.get("toy") or prov.get("skipped_count"):
        raise ConvertError(f"{pkg_dir}: not a full build with this split rule and no skipped files; "
                           "its training files cannot be recomputed exactly")
    settings = prov.get("settings")
    if settings is None:  # built before provenance kept the settings: the committed recipe's
        settings = yaml.safe_load((REPO / "converter" / "recipes" / f"{meta['name']}.yaml").read_text())
        if "pretrain" not in (prov.get("epochs") or {}):
            settings.pop("pretrain_labels", None)
    labels = list(settings.get("pretrain_labels") or meta["labels"])
    entries, test_n = [], {lab: 0 for lab in meta["labels"]}
    for path, k in class_folder_files(data, labels):
        split = split_of(path.name)
        if split == "test":
            test_n[labels[k]] = test_n.get(labels[k], 0) + 1
            continue
        entries.append((sha256_path(path), split, f"{labels[k]}/{path.relative_to(data / labels[k]).as_posix()}"))
    recorded = {lab: pc["n"] for lab, pc in meta["metrics"]["int8"]["per_class"].items()}
    if {lab: test_n[lab] for lab in meta["labels"]} != recorded:
        raise ConvertError(f"{data}: the test split recomputed here ({test_n}) is not the one "
                           f"{pkg_dir} was scored on ({recorded}); not the same data")
    return entries


def main() -> None:
    """python -m converter.provenance --package models/X --data DIR: add training_files.txt to a
    package built before packages recorded them (the split is recomputed and checked)."""
    import argparse
    import hashlib
    import json

    from edge.training_files import FILE, render

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--package", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path)
    a = ap.parse_args()
    entries = recorded_split(a.package, a.data)
    data = render(entries)
    (a.package / FILE).write_bytes(data)
    meta_path = a.package / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["provenance"]["training_files"] = {
        "file": FILE, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
        "count": len(entries), "splits": ["train", "val"],
        "added": "recomputed from the recorded split rule by python -m converter.provenance"}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{a.package}: {len(entries)} training files recorded in {FILE}")


if __name__ == "__main__":
    main()
