"""Checks of output paths made before any training or conversion (no TensorFlow here), so a
bad --out or --json costs a second, not a build."""

from __future__ import annotations

import os
from pathlib import Path

from converter.errors import ConvertError


def _check_dir_for(p: Path, d: Path, what: str) -> None:
    """d (a directory p is or will be in) must be creatable or writable."""
    base = d.absolute()
    while not base.exists() and base != base.parent:
        base = base.parent
    named = "" if base == p.absolute() else f"{base} is "
    if not base.is_dir():
        raise ConvertError(f"{what} {p}: {named}not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConvertError(f"{what} {p}: {named}not writable")


def check_out_dir(path: Path | str, what: str = "--out") -> Path:
    """A directory we can create or write into; ConvertError (one line) otherwise."""
    p = Path(path)
    _check_dir_for(p, p, what)
    return p


def check_out_file(path: Path | str, what: str = "--json") -> Path:
    """A file we can create or replace; ConvertError (one line) otherwise."""
    p = Path(path)
    if p.is_dir():
        raise ConvertError(f"{what} {p}: is a directory")
    _check_dir_for(p, p.parent, what)
    return p
