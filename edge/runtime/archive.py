"""Model packages as one file: a .tar.gz / .tgz / .zip of a package folder (what the web page's
GET /api/model downloads), unpacked safely into a cache so `--model FILE` can run it.

Unpacking refuses anything but regular files and folders inside one top folder (no links,
devices, absolute paths or '..'), and more than MAX_BYTES in all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from edge.errors import ModelError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
MAX_BYTES = 512 * 2**20
MAX_FILES = 256


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(ARCHIVE_SUFFIXES)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fingercount" / "unpacked"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _safe_name(name: str, what: Path) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in name:
        raise ModelError(f"{what}: refusing the archive member {name[:100]!r} (outside the package)")
    return p


def _members(path: Path) -> list[tuple[PurePosixPath, int]]:
    """(name, size) of every regular file; ModelError for anything unsafe or too large."""
    out: list[tuple[PurePosixPath, int]] = []
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                for zi in z.infolist():
                    if not zi.is_dir():
                        out.append((_safe_name(zi.filename, path), zi.file_size))
        else:
            with tarfile.open(path, "r:gz") as t:
                for ti in t.getmembers():
                    if ti.isdir():
                        _safe_name(ti.name, path)
                    elif ti.isfile():
                        out.append((_safe_name(ti.name, path), ti.size))
                    else:
                        raise ModelError(f"{path}: refusing the archive member {ti.name[:100]!r} "
                                         "(not a regular file)")
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as e:
        raise ModelError(f"{path}: not a readable package archive ({e})") from e
    if len(out) > MAX_FILES or sum(s for _, s in out) > MAX_BYTES:
        raise ModelError(f"{path}: too large for a model package ({len(out)} files)")
    return out


def unpack_package(path: Path) -> Path:
    """The package folder inside the archive (a folder holding model.json), unpacked once into
    the cache (named by the archive's sha256), or into a temporary folder if the cache cannot
    be written."""
    path = Path(path)
    members = _members(path)
    tops = {m.parts[0] for m, _ in members}
    jsons = [m for m, _ in members if m.name == "model.json"]
    if len(jsons) != 1 or len(tops) != 1 or len(jsons[0].parts) != 2:
        raise ModelError(f"{path}: not a model package archive (expected one folder with a model.json)")
    top = jsons[0].parts[0]
    try:
        root = cache_root() / _digest(path)
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path(tempfile.mkdtemp(prefix="fingercount-model-"))
    if (root / top / "model.json").is_file():
        return root / top
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root.parent if root.parent.is_dir() else None))
    try:
        wanted = {str(m) for m, _ in members}
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                for name in wanted:
                    dst = staging / name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(name) as src, open(dst, "wb") as f:
                        shutil.copyfileobj(src, f)
        else:
            with tarfile.open(path, "r:gz") as t:
                for ti in t.getmembers():
                    if ti.isfile() and ti.name in wanted:
                        dst = staging / ti.name
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        member = t.extractfile(ti)
                        assert member is not None  # a regular file
                        with member, open(dst, "wb") as f:
                            shutil.copyfileobj(member, f)
        try:
            os.replace(staging, root) if not root.exists() else shutil.rmtree(staging)
        except OSError:  # another process unpacked it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"{path}: cannot unpack ({e})") from e
    if not (root / top / "model.json").is_file():
        raise ModelError(f"{path}: unpacked, but {root / top} has no model.json")
    return root / top
