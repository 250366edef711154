"""Write a model package (docs/model-package.md) atomically: stage, then rename into place."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import ConvertError
from edge.runtime.package import sha256_file


def git_commit() -> str:
    """HEAD of the converter's checkout, +uncommitted-converter-changes when converter/ differs."""
    try:
        here = Path(__file__).parent
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, cwd=here).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", str(here)], capture_output=True,
                               text=True, timeout=5, cwd=here).stdout.strip()
        return head + ("+uncommitted-converter-changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_entry(root: Path, name: str) -> dict:
    p = root / name
    return {"file": name, "sha256": sha256_file(p), "bytes": p.stat().st_size}


def write_bytes(root: Path, name: str, data: bytes) -> dict:
    p = root / name
    with open(p, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return file_entry(root, name)


def write_npz(root: Path, name: str, **arrays: Any) -> dict:
    with open(root / name, "wb") as f:
        np.savez_compressed(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    return file_entry(root, name)


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def stage_dir(out: Path, name: str) -> Path:
    stage = out / f".{name}.building"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    return stage


class PublishConflict(ConvertError):
    """OUT/<name> appeared while building: the complete build stays in its staging folder."""


@contextmanager
def staging(out: Path, name: str) -> Iterator[Path]:
    """A fresh staging folder out/.<name>.building for the body to fill and publish.

    On any exception (KeyboardInterrupt and SystemExit too) the folder is removed, so an
    interrupted or failed build leaves no half-written package behind; only a complete
    build that could not be published (PublishConflict) stays, for inspection."""
    stage = stage_dir(out, name)
    try:
        yield stage
    except PublishConflict:
        raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def check_dest(out: Path, name: str, replace: bool) -> Path:
    """out/<name>, where a package goes; ConvertError if something is there and not replace
    (a build never silently replaces a package, e.g. a shipped model by a toy). Only a model
    package (a directory with model.json) is ever replaced: anything else there is refused,
    --force or not, so a build cannot delete a folder of someone's own files."""
    final = out / name
    if not (final.exists() or final.is_symlink()):
        return final
    if not (final / "model.json").is_file():
        what = "a directory" if final.is_dir() else "a file" if final.exists() else "a broken link"
        raise ConvertError(f"{final}: already exists and is {what}, not a model package (no "
                           "model.json), so a build will not replace it, even with --force; move "
                           "it away or use --out another directory")
    if not replace:
        raise ConvertError(f"{final}: already exists (a model package); pass --force to replace it, "
                           "or --out another directory")
    return final


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.exists():
        shutil.rmtree(p, ignore_errors=True)


def publish(stage: Path, out: Path, name: str, replace: bool = False) -> Path:
    """Put the staged package at out/<name>. An existing one is replaced only with replace
    (and removed only after); otherwise ConvertError and the stage stays for inspection."""
    try:
        final = check_dest(out, name, replace)
    except ConvertError as e:  # made meanwhile: keep what was built
        raise PublishConflict(f"{e} (this build is in {stage})") from None
    old = out / f".{name}.old"
    _remove(old)
    try:
        if final.exists():
            os.replace(final, old)
        os.replace(stage, final)
    except BaseException:  # e.g. Ctrl-C between the two renames: put the old package back
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise
    _remove(old)
    return final
