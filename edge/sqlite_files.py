"""What the daemon's SQLite files (outbox, sample index) share: a durable, checked
connection, write transactions, telling a damaged file from other errors, and moving one
aside so a fresh file can start and the old one stays for a post-mortem."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional


class DamagedFile(Exception):
    """PRAGMA quick_check or the schema says the file is not what it should be."""


def is_damaged(e: BaseException) -> bool:
    return isinstance(e, DamagedFile) or getattr(e, "sqlite_errorname", "") in (
        "SQLITE_CORRUPT", "SQLITE_NOTADB")


def check(db: sqlite3.Connection) -> None:
    """Raise DamagedFile unless PRAGMA quick_check passes (reads every page: a damaged page
    is found at open, not at the first write months later)."""
    result = db.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise DamagedFile(result)


KEEP_CORRUPT = 3  # copies moved aside as damaged that are kept for a post-mortem
WAL_PAGES = 100
WAL_LIMIT_BYTES = 512 * 1024


def connect(path: Path, timeout: float, setup: Callable[[sqlite3.Connection], object],
            exclusive: bool = False) -> sqlite3.Connection:
    """An autocommit connection usable from any thread (callers serialise with their own
    lock), WAL with synchronous=FULL (a COMMIT is on disk when it returns), checked by
    quick_check, then setup(db) for the schema; closed again if any of that fails.

    exclusive: for a file only this process opens. SQLite then keeps the WAL index in heap
    memory and makes no -shm file: a memory-mapped -shm kills the process with SIGBUS when
    its file becomes unwritable (a card remounted read-only). Another process opening the
    file gets SQLITE_BUSY for as long as this connection is open."""
    db = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        if exclusive:  # before the first WAL access, or SQLite maps the -shm anyway
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        # The WAL grew to 4 MB by default (1000 pages) and stayed that size: a lot on a nearly
        # full card. 100 pages bound it to ~400 KB for +1 % written per outbox message.
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")  # shrinks an older, larger WAL
        check(db)
        setup(db)
    except BaseException:
        db.close()
        raise
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed on success, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def file_id(path: Path) -> Optional[tuple[int, int]]:
    """(st_dev, st_ino) of the file at path, None when there is none: tells a file that was
    deleted or replaced from the one a connection has open."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_dev, st.st_ino


def move_aside(path: Path) -> Path:
    """path -> path.corrupt-<time>[.N], with its -wal/-shm (openable together again); .N
    when an earlier copy has that second's name, so it is not overwritten."""
    stem = f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
    aside, n = path.with_name(stem), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{stem}.{n}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(aside.with_name(aside.name + suffix))
    return aside


def prune_aside(path: Path, keep: int, spare: Optional[Path] = None) -> list[Path]:
    """Delete all but the newest `keep` files move_aside made of path (with their -wal/-shm),
    so a card that keeps corrupting does not fill up; `spare` (just moved aside) is one of
    them whatever its name says (a Pi's clock can be wrong). Returns what was deleted."""
    names = sorted({f.name.removesuffix("-wal").removesuffix("-shm")
                    for f in path.parent.glob(f"{path.name}.corrupt-*")} - ({spare.name} if spare else set()))
    gone = []
    for name in names[:max(0, len(names) - keep + (spare is not None))]:  # <time> sorts as it reads
        for suffix in ("", "-wal", "-shm"):
            f = path.with_name(name + suffix)
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
                gone.append(f)
    return gone


def open_or_replace(path: Path, open_db: Callable[[Path], sqlite3.Connection], keep: int = KEEP_CORRUPT
                    ) -> tuple[sqlite3.Connection, Optional[tuple[Path, BaseException]]]:
    """open_db(path); if the file is damaged, it is moved aside and open_db starts a new one;
    of the copies moved aside the newest `keep` are kept. Returns the connection and, when
    a copy was moved aside, (where it went, why)."""
    try:
        return open_db(path), None
    except (sqlite3.DatabaseError, DamagedFile) as e:
        if not is_damaged(e):
            raise
        aside = move_aside(path)
        db = open_db(path)
        with contextlib.suppress(OSError):
            prune_aside(path, keep, aside)
        return db, (aside, e)
