"""The retrained heads on disk, changed so that no crash loses one.

Heads live in <state_dir>/heads/<model>/: head.npz (current) and head.previous.npz
(what `rollback` restores). Without a user head the shipped head is "previous", so a
rollback of the first retrain returns to the shipped fused model.

Changing both files (a swap-in keeps the current head as previous; a rollback exchanges
them) survives a crash at any instant: the new files are staged as <name>.next (temp
file, fsync, rename), then swap.json, written the same way, commits the change, then the
staged files are renamed into place (head.npz first) and swap.json is removed. A crash
before the commit leaves the old pair; after it, the next head operation (retrain,
rollback, the daemon's start) finishes it. Both heads are on disk at every instant.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from edge.config import Config
from edge.durable import fsync_dir, write_json
from edge.errors import ModelError, RetrainError
from edge.runtime.classifier import (
    HEAD_FILE,
    PREVIOUS_HEAD_FILE,
    Head,
    current_head_path,
    head_dir,
    head_info,
    load_user_head,
)
from edge.runtime.package import ModelPackage

log = logging.getLogger(__name__)

SWAP_FILE = "swap.json"  # the commit point of a head change (see the module docstring)
STAGED = ".next"  # a head file staged for the change swap.json commits
LOCK_FILE = ".lock"  # serialises head changes between the daemon and CLI commands
_UNCHECKED = object()  # install_head without a check of what head.npz was


def head_identity(state_dir: Path, model_name: str) -> Optional[tuple[int, int, int]]:
    """(inode, mtime, size) of the model's head.npz; None when the shipped head runs."""
    try:
        st = os.stat(head_dir(state_dir, model_name) / HEAD_FILE)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def shipped_head(package: ModelPackage) -> Head:
    return Head.load(package.file_path("head"))


def current_head(cfg: Config, package: ModelPackage) -> tuple[Head, bool]:
    """(head in effect, is_user_head): the user's head when present, else the shipped one."""
    p = current_head_path(cfg.state_dir, package.name)
    if p is not None:
        try:
            return load_user_head(p, package), True
        except ModelError as e:  # the same fallback as Classifier's: the shipped head
            log.warning("ignoring the retrained head: %s", e)
    return shipped_head(package), False


@contextlib.contextmanager
def _heads_locked(d: Path) -> Iterator[None]:
    """One head change at a time, across processes and threads (each call its own flock)."""
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _apply_swap(d: Path) -> bool:
    """Finish a committed head change, or drop an uncommitted one. True if one was finished."""
    journal = d / SWAP_FILE
    if not journal.is_file():
        for p in d.glob("*.tmp"):  # a write cut short, before any commit
            p.unlink(missing_ok=True)
        for p in d.glob(f"*{STAGED}"):
            p.unlink(missing_ok=True)
        return False
    try:
        plan = json.loads(journal.read_text())
        if not isinstance(plan, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as e:  # written atomically, so only a damaged card; lose no head
        log.warning("%s is unreadable (%s): installing the staged heads as they are", journal, e)
        plan = {}
    for name in (HEAD_FILE, PREVIOUS_HEAD_FILE):  # head.npz first: it is what runs
        staged = d / (name + STAGED)
        if plan.get(name) == "remove":
            (d / name).unlink(missing_ok=True)
        elif staged.is_file():
            os.replace(staged, d / name)
    fsync_dir(d)
    journal.unlink()
    fsync_dir(d)
    return True


def finish_head_swap(cfg: Config, package: ModelPackage) -> bool:
    """Complete a head change a crash interrupted; True if head.npz may have changed."""
    d = head_dir(cfg.state_dir, package.name)
    if not d.is_dir():
        return False
    try:
        with _heads_locked(d):
            return _apply_swap(d)
    except OSError as e:
        raise RetrainError(f"cannot finish the interrupted head change in {d}: {e.strerror or e}") from e


def _swap_heads(d: Path, current: Optional[tuple[Head, dict]], previous: tuple[Head, dict]) -> None:
    """head.npz := current (None: removed, the shipped model runs), head.previous.npz :=
    previous, as one crash-safe change (the caller holds the lock and has finished any
    change left pending with _apply_swap)."""
    plan = {HEAD_FILE: "remove" if current is None else "replace", PREVIOUS_HEAD_FILE: "replace"}
    previous[0].save(d / (PREVIOUS_HEAD_FILE + STAGED), info_json=json.dumps(previous[1]))
    if current is not None:
        current[0].save(d / (HEAD_FILE + STAGED), info_json=json.dumps(current[1]))
    write_json(d / SWAP_FILE, plan)  # the commit point
    _apply_swap(d)


def install_head(cfg: Config, package: ModelPackage, new: Head, cur: Head, cur_is_user: bool,
                 info: dict, cur_identity: object = _UNCHECKED) -> Path:
    """head.npz := new, head.previous.npz := the current head, in one crash-safe change.
    cur_identity: head_identity() when cur was read; if head.npz has changed since (another
    retrain or a rollback beside this one), nothing is installed: cur would be lost."""
    d = head_dir(cfg.state_dir, package.name)
    prev_info = head_info(cur) if cur_is_user else {"origin": "shipped"}
    try:
        with _heads_locked(d):
            _apply_swap(d)
            if cur_identity is not _UNCHECKED and head_identity(cfg.state_dir, package.name) != cur_identity:
                raise RetrainError("the head changed while this retrain ran (another retrain or a "
                                   "rollback beside it): nothing installed; run retrain again")
            _swap_heads(d, (new, {"origin": "retrained", **info}), (cur, prev_info))
    except OSError as e:
        raise RetrainError(f"cannot write the new head to {d}: {e.strerror or e}") from e
    return d / HEAD_FILE


def rollback(cfg: Config, package: ModelPackage) -> dict:
    """Exchange head.npz and head.previous.npz (a second rollback re-applies the newer head).

    If the previous head is the shipped one, head.npz is removed so the fused model runs again.
    """
    if not package.retrainable:
        raise RetrainError(f"{package.name} cannot be retrained on the device, so it has no "
                           "previous head to roll back to")
    d = head_dir(cfg.state_dir, package.name)
    prev_path = d / PREVIOUS_HEAD_FILE
    if not d.is_dir():
        raise RetrainError(f"nothing to roll back to for {package.name} (no {prev_path})")
    try:
        with _heads_locked(d):
            _apply_swap(d)
            if not prev_path.is_file():
                raise RetrainError(f"nothing to roll back to for {package.name} (no {prev_path})")
            prev = Head.load(prev_path)
            cur, cur_is_user = current_head(cfg, package)
            prev_info = head_info(prev)
            _swap_heads(d, None if prev_info.get("origin") == "shipped" else (prev, prev_info),
                        (cur, head_info(cur) if cur_is_user else {"origin": "shipped"}))
    except OSError as e:
        raise RetrainError(f"rollback failed writing {d}: {e.strerror or e}") from e
    now = "shipped" if prev_info.get("origin") == "shipped" else "retrained"
    return {"model": package.name, "head": now, "labels": list(prev.labels),
            "trained_at": prev_info.get("trained_at")}
