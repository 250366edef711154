"""Durable labelled-sample store: <state_dir>/samples/<label>/<utc>-<seq>.jpg + an SQLite index.

Write order for every sample (so a power cut or SIGKILL at any instant leaves either
nothing or a complete sample): JPEG bytes -> temporary name (".<name>.tmp") -> fsync ->
rename to the final name -> fsync the directory -> index row (WAL, synchronous=FULL)
-> only then is the capture acknowledged.

Recovery on open (decided): stray temporary files and label folders being removed are
deleted; an index row whose file is gone is deleted; a final-named file without a row is
complete by construction (it was fsynced before the rename), so it is indexed with source
"recovered" and the capture time its name carries -- unless it does not decode as an
image, then it is removed. A folder whose name is not a valid label (e.g. "3\\n", which an
older version accepted) is skipped with one warning line: its files are left as they are
and its index rows dropped, so no such class is trained or exported; renamed to a valid
label, its files are samples again at the next open. The index changes are one
transaction, and no sample file is removed before it commits: a repair that fails (a full
disk) leaves the samples as they were. Each repair is logged and counted in
`SampleStore.recovered`.

Every SQLite or OS error while opening, repairing, reading or changing the store is a
one-line SampleError: the CLI prints it, the daemon refuses captures and keeps counting.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Optional, Protocol

import cv2
import numpy as np

from edge.config import Config
from edge.durable import fsync_dir
from edge.errors import SampleError
from edge.sqlite_files import DamagedFile, connect, open_or_replace, transaction

log = logging.getLogger(__name__)

SAMPLES_DIR = "samples"
INDEX_FILE = "samples.sqlite3"  # beside samples/, so samples/ stays a pure class-folder dataset
TMP_SUFFIX = ".tmp"
REMOVING_PREFIX = ".removing-"  # a label folder being deleted (never a valid label)
MAX_LABEL_LEN = 32
# fullmatch: "$" would let "3\n" through; no leading "-": a folder "-rf" reads as an option
_LABEL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,31}")
# Errors that mean "no room": refuse the sample, keep running.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,          -- relative to samples/
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    time TEXT NOT NULL,                 -- UTC ISO 8601
    width INTEGER,
    height INTEGER,
    embedding BLOB,                     -- float32, NULL until computed
    backbone_sha256 TEXT                -- the backbone that made `embedding`
);
CREATE INDEX IF NOT EXISTS samples_label ON samples(label);
"""
# The hand in a sample, for counters on landmarks (added to older indexes on open):
# landmarks float32 (21, 3) or NULL when the hand stage `hand_model` found no hand; NULL
# hand_model: not looked at yet. features/feature_version: the landmark features made from
# them (recomputed when the version differs).
_HAND_COLUMNS = {"landmarks": "BLOB", "handedness": "TEXT", "hand_score": "REAL", "hand_model": "TEXT",
                 "features": "BLOB", "feature_version": "TEXT"}


@dataclass(frozen=True)
class StoredHand:
    """The hand stage's answer for one sample: landmarks None = no hand was found."""

    hand_model: str  # identity of the hand stage (its models' sha256)
    landmarks: Optional[np.ndarray] = None  # (21, 3) float32, frame pixels
    handedness: str = ""
    score: float = 0.0


def validate_label(label: object) -> str:
    """A label usable as a folder name: 1-32 of [A-Za-z0-9_-]. SampleError otherwise."""
    if not isinstance(label, str) or not label:
        raise SampleError("label must be a non-empty string")
    if len(label) > MAX_LABEL_LEN:
        raise SampleError(f"label {label[:40]!r}… is longer than {MAX_LABEL_LEN} characters")
    if not _LABEL_RE.fullmatch(label):
        raise SampleError(f"label {label!r} may only contain letters, digits, '_' and '-' "
                          "(and may not start with '-')")
    return label


def _writer_alive(name: str) -> bool:
    """True if the file name carries the pid of another live process (a write in flight)."""
    parts = name.lstrip(".").split("-")
    if len(parts) < 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_bytes(path: Path) -> Optional[int]:
    """Bytes available to us on path's filesystem (its nearest existing parent), None if unknown."""
    for p in (path, *path.parents):
        try:
            st = os.statvfs(p)
            return st.f_bavail * st.f_frsize
        except OSError:
            continue
    return None


def _is_full(e: BaseException) -> bool:
    if isinstance(e, OSError):
        return e.errno in _NO_SPACE
    return getattr(e, "sqlite_errorname", "") == "SQLITE_FULL"


def _why(e: BaseException, where: Path) -> str:
    """The reason in a few words; a nearly full disk is named as such, whatever SQLite said."""
    free = _free_bytes(where)
    not_writable = (isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
                    or getattr(e, "sqlite_errorname", "") in ("SQLITE_READONLY", "SQLITE_PERM")
                    or (where.exists() and not os.access(where, os.W_OK)))
    if not not_writable and (_is_full(e) or (free is not None and free < 1 << 20)):
        return "disk full" + (f" ({free} bytes free)" if free is not None else "")
    why = (e.strerror if isinstance(e, OSError) else None) or str(e)
    return f"{why} ({where} is not writable)" if not_writable else why


def _capture_time(name: str, path: Path) -> str:
    """A sample's capture time: its file name's <utc> part (as add() wrote it), else the mtime."""
    try:
        t = datetime.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        t = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return t.isoformat()


def _mb_like(n: int, limit_mb: float) -> str:
    """n bytes in MB with as many decimals as limit_mb shows (at least 1): 0.012 for a 0.015 limit."""
    exp = Decimal(f"{limit_mb:g}").as_tuple().exponent
    places = min(6, max(1, -exp)) if isinstance(exp, int) else 1
    return f"{n / 1e6:.{places}f}"


def _no_space_message(e: OSError) -> str:
    what = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file size limit reached"}.get(e.errno or 0, e.strerror or str(e))
    return f"sample refused: {what} ({e.strerror or e})"


@dataclass(frozen=True)
class Sample:
    id: int
    label: str
    path: Path  # absolute
    sha256: str
    source: str
    time: str
    has_embedding: bool = False


class Embedder(Protocol):
    """What the store needs of a backbone (edge.runtime.classifier.Backbone)."""

    sha256: str

    def embed_frame(self, frame: np.ndarray) -> Optional[np.ndarray]: ...  # None: nothing to learn


class SampleStore:
    """Thread-safe; one instance per process. Close it (or use `with`)."""

    def __init__(self, state_dir: Path | str, jpeg_quality: int = 92, max_mb: float = 0,
                 min_free_mb: float = 0, max_labels: int = 0):
        self.state_dir = Path(state_dir)
        self.root = self.state_dir / SAMPLES_DIR
        self.jpeg_quality = int(jpeg_quality)
        # Quota: a stuck button or a runaway automation must not fill the card that the
        # outbox, the heads and the journal live on.
        self.max_bytes = int(max_mb * 1e6)
        self.min_free_bytes = int(min_free_mb * 1e6)
        self.max_labels = int(max_labels)  # anyone on the broker can invent labels
        self._bytes = 0  # sample files' size; rescanned when a capture would pass max_bytes
        self._scanned_dirs: Optional[tuple] = None  # _dirs_stamp() when _bytes was last scanned
        self._lock = threading.RLock()
        self._seq = 0
        self.recovered: dict[str, int] = {"temp_removed": 0, "rows_removed": 0,
                                          "files_indexed": 0, "files_removed": 0}
        index = self.state_dir / INDEX_FILE
        db: Optional[sqlite3.Connection] = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            db, replaced = open_or_replace(index, self._open_index)
            self._db = db
            if replaced is not None:
                # The samples are the files; the index only describes them (and caches
                # embeddings). The new one is rebuilt from the class folders below.
                log.warning("sample index %s is damaged (%s): moved aside to %s; re-indexing "
                            "the samples from %s", index, replaced[1], replaced[0].name, self.root)
                self.recovered["index_replaced"] = 1
            self._recover()
        except (OSError, sqlite3.Error, DamagedFile) as e:
            if db is not None:
                db.close()
            raise SampleError(f"cannot open the sample store in {self.state_dir}: "
                              f"{_why(e, self.state_dir)}") from e

    @staticmethod
    def _open_index(path: Path) -> sqlite3.Connection:
        def setup(db: sqlite3.Connection) -> None:
            db.executescript(_SCHEMA)
            have = {r[1] for r in db.execute("PRAGMA table_info(samples)")}
            for col, typ in _HAND_COLUMNS.items():
                if col not in have:
                    db.execute(f"ALTER TABLE samples ADD COLUMN {col} {typ}")
        return connect(path, 30, setup)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """SQLite and OS errors as one SampleError line: '<what>: <why>'."""
        try:
            yield
        except SampleError:
            raise
        except (OSError, sqlite3.Error) as e:
            raise SampleError(f"{what}: {_why(e, self.state_dir)}") from e

    # ---- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recover(self) -> None:
        with self._lock:
            rows = {r[0]: r[1] for r in self._db.execute("SELECT path, id FROM samples")}
            on_disk: set[str] = set()
            skipped: set[str] = set()
            for label_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
                if label_dir.name.startswith(REMOVING_PREFIX):  # a removal a power cut interrupted
                    shutil.rmtree(label_dir, ignore_errors=True)
                    continue
                try:
                    validate_label(label_dir.name)
                except SampleError as e:
                    skipped.add(label_dir.name)
                    log.warning("sample store: skipping the folder %r in %s (%s): its files are not "
                                "used as samples and are left in place; rename it to a valid label "
                                "to use them", label_dir.name, self.root, e)
                    continue
                for f in sorted(label_dir.iterdir()):
                    if f.name.endswith(TMP_SUFFIX):
                        if _writer_alive(f.name):
                            continue  # another process is writing this sample right now
                        f.unlink(missing_ok=True)  # never acknowledged: not a sample
                        self.recovered["temp_removed"] += 1
                    elif f.is_file() and f.suffix.lower() == ".jpg":
                        on_disk.add(f"{label_dir.name}/{f.name}")
                        self._bytes += f.stat().st_size
            # rows of a skipped folder go too, without counting as a repair (its warning said it)
            invalid = [rows[p] for p in rows if p.split("/", 1)[0] in skipped]
            gone = [rows[p] for p in rows if p not in on_disk and p.split("/", 1)[0] not in skipped]
            orphans = [rel for rel in sorted(on_disk - set(rows))
                       if not _writer_alive(rel.split("/", 1)[1])]  # a live writer indexes it in a moment
            undecodable: list[Path] = []
            if gone or orphans or invalid:
                with transaction(self._db):  # all or nothing: a full disk changes nothing
                    self._db.executemany("DELETE FROM samples WHERE id = ?", [(i,) for i in gone + invalid])
                    for rel in orphans:
                        if not self._index_orphan(rel):
                            undecodable.append(self.root / rel)
            self.recovered["rows_removed"] += len(gone)
            self.recovered["files_indexed"] += len(orphans) - len(undecodable)
            for path in undecodable:  # only once the index no longer needs to change
                path.unlink(missing_ok=True)
                self.recovered["files_removed"] += 1
            if any(self.recovered.values()):
                log.warning("sample store %s repaired: %s", self.root, self.recovered)

    def _index_orphan(self, rel: str) -> bool:
        """Index a final-named file that has no row; False if it is not a sample (to remove)."""
        path = self.root / rel
        label, name = rel.split("/", 1)
        data = path.read_bytes()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        try:
            validate_label(label)
        except SampleError:
            img = None
        if img is None:
            return False
        # The source is not in the file (so "recovered"); the capture time is, in its name.
        self._db.execute(
            "INSERT INTO samples(label, path, sha256, source, time, width, height) VALUES (?,?,?,?,?,?,?)",
            (label, rel, hashlib.sha256(data).hexdigest(), "recovered", _capture_time(name, path),
             img.shape[1], img.shape[0]))
        return True

    # ---- writing -----------------------------------------------------------------

    def _encode(self, frame: np.ndarray) -> bytes:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim not in (2, 3):
            raise SampleError("sample refused: the frame is not an 8-bit image")
        bgr = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise SampleError("sample refused: JPEG encoding failed")
        return buf.tobytes()

    def _final_name(self, label_dir: Path, now: datetime) -> Path:
        stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond:06d}Z"
        while True:
            self._seq += 1
            # <utc>-<pid>-<n>: unique across processes; the pid tells recovery whether a writer lives.
            p = label_dir / f"{stamp}-{os.getpid()}-{self._seq}.jpg"
            if not p.exists():
                return p

    def add(self, frame: np.ndarray, label: str, source: str = "api",
            embedding: Optional[np.ndarray] = None, backbone_sha256: Optional[str] = None,
            hand: Optional[StoredHand] = None) -> Sample:
        """Store one RGB frame under `label`; returns only once file and row are durable."""
        label = validate_label(label)
        data = self._encode(frame)
        digest = hashlib.sha256(data).hexdigest()
        now = datetime.now(timezone.utc)
        with self._lock:
            self._check_room(len(data))
            self._check_labels(label)
            label_dir = self.root / label
            final = self._final_name(label_dir, now)
            tmp = final.with_name("." + final.name + TMP_SUFFIX)
            renamed = False
            try:
                label_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, final)
                renamed = True
                fsync_dir(label_dir)
                rel = f"{label}/{final.name}"
                emb = None if embedding is None else np.asarray(embedding, np.float32).tobytes()
                h = _hand_values(hand)  # in the same row: a sample is indexed with its hand or not at all
                cur = self._db.execute(
                    "INSERT INTO samples(label, path, sha256, source, time, width, height, embedding, "
                    "backbone_sha256, landmarks, handedness, hand_score, hand_model) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (label, rel, digest, source, now.isoformat(), frame.shape[1], frame.shape[0], emb,
                     backbone_sha256 if emb is not None else None, *h))
                assert cur.lastrowid is not None
                row_id = cur.lastrowid
                self._bytes += len(data)
            except (OSError, sqlite3.Error) as e:
                self._undo(tmp, final if renamed else None, label_dir)
                if isinstance(e, OSError) and e.errno in _NO_SPACE:
                    raise SampleError(_no_space_message(e)) from e
                if isinstance(e, sqlite3.OperationalError) and "full" in str(e).lower():
                    raise SampleError(f"sample refused: disk full (index: {e})") from e
                raise SampleError(f"sample refused: cannot write {final}: {e}") from e
        return Sample(row_id, label, final, digest, source, now.isoformat(), emb is not None)

    def _check_room(self, n: int) -> None:
        """Refuse a sample of n bytes that would break samples.min_free_mb or max_mb."""
        if self.min_free_bytes:
            free = _free_bytes(self.root)
            if free is not None and free - n < self.min_free_bytes:
                raise SampleError(f"sample refused: the disk is almost full ({free / 1e6:.1f} MB free; "
                                  f"samples.min_free_mb keeps {self.min_free_bytes / 1e6:g} MB for the "
                                  "outbox, heads and logs)")
        if self.max_bytes and self._bytes + n > self.max_bytes:
            # another process may have removed samples: rescan, unless no folder changed since
            # the last scan (a held button at the cap would rescan thousands of files a press)
            stamp = self._dirs_stamp()
            if stamp is None or stamp != self._scanned_dirs:
                self._bytes = self._scan_bytes()
                self._scanned_dirs = stamp
            if self._bytes + n > self.max_bytes:
                raise SampleError(f"sample refused: the sample store is full "
                                  f"({_mb_like(self._bytes, self.max_bytes / 1e6)} MB; "
                                  f"samples.max_mb is {self.max_bytes / 1e6:g}): export what you need "
                                  "(fingercount samples export DIR), then remove a label "
                                  "(fingercount samples remove --label L)")

    def _check_labels(self, label: str) -> None:
        if self.max_labels:
            known = self.counts()
            if label not in known and len(known) >= self.max_labels:
                raise SampleError(f"sample refused: the store has {len(known)} labels, samples.max_labels "
                                  f"is {self.max_labels}: capture under one of them, or remove one "
                                  "(fingercount samples remove --label L)")

    def _dirs_stamp(self) -> Optional[tuple]:
        """The store's folders and their mtimes: a sample added or removed changes its label
        folder's, a label removed changes the root's. None if they cannot be read."""
        try:
            dirs = [self.root, *(p for p in self.root.iterdir() if p.is_dir())]
            return tuple((p.name, p.stat().st_mtime_ns) for p in dirs)
        except OSError:
            return None

    def _scan_bytes(self) -> int:
        total = 0
        for f in self.root.glob("*/*.jpg"):
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another process
                total += f.stat().st_size
        return total

    def _undo(self, tmp: Path, final: Optional[Path], label_dir: Path) -> None:
        """Leave nothing partial behind after a failed write."""
        for p in (tmp, final):
            if p is not None:
                try:
                    p.unlink(missing_ok=True)
                except OSError:
                    pass
        try:
            fsync_dir(label_dir)
            if not any(label_dir.iterdir()):
                label_dir.rmdir()
        except OSError:
            pass

    def remove_label(self, label: str) -> int:
        """Delete every sample of a label (folder renamed, files, rows). Returns how many.

        A label with neither samples nor a folder (a typo) is a SampleError naming the labels.
        The rename is the point of no return: a power cut after it is finished by the next
        open, never undone. The files go before the rows, so a full disk gets its room back
        first and can then record the removal; if it still cannot, the next open does.
        """
        label = validate_label(label)
        with self._lock:
            known = self.counts()
            if label not in known and not (self.root / label).exists():  # a typo deletes nothing
                raise SampleError(f"no label {label!r} in the sample store (labels: "
                                  f"{', '.join(known) or 'none stored'})")
            doomed = self.root / f"{REMOVING_PREFIX}{label}-{os.getpid()}"
            try:
                (self.root / label).rename(doomed)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise SampleError(f"cannot remove label {label!r}: {e.strerror or e}") from e
            shutil.rmtree(doomed, ignore_errors=True)
            self._bytes = self._scan_bytes()
            with self._errors(f"removed the files of label {label!r}, but not yet its index rows "
                              "(the next open of the store drops them)"):
                n = self._db.execute("DELETE FROM samples WHERE label = ?", (label,)).rowcount
        return int(n)

    def remove_sample(self, ref: str) -> Sample:
        """Delete one sample (a mislabelled one), named by its path or its sha256 (8+ leading
        hex digits). The file goes before the row; a row left by a power cut between the
        two is dropped at the next open."""
        with self._lock:
            hits = self._find(ref)
            if len(hits) != 1:
                raise SampleError(f"no sample {ref!r} in the sample store (give a path or sha256 "
                                  "from `fingercount samples list`)" if not hits else
                                  f"{len(hits)} samples match {ref!r}: give more of the sha256")
            s = hits[0]
            try:
                s.path.unlink(missing_ok=True)
                fsync_dir(s.path.parent)
            except OSError as e:
                raise SampleError(f"cannot remove {s.path}: {e.strerror or e}") from e
            self._bytes = self._scan_bytes()
            with self._errors(f"removed {s.path}, but not yet its index row (the next open of the "
                              "store drops it)"):
                self._db.execute("DELETE FROM samples WHERE id = ?", (s.id,))
        return s

    def _find(self, ref: str) -> builtins.list[Sample]:
        if re.fullmatch(r"[0-9a-fA-F]{8,64}", ref):
            return [s for s in self.list() if s.sha256.startswith(ref.lower())]
        try:
            want = Path(ref).expanduser().resolve()
            root = self.root.resolve()
        except OSError:
            return []
        return [s for s in self.list() if (root / s.path.relative_to(self.root)) == want]

    # ---- reading -----------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self._lock, self._errors("cannot read the sample index"):
            return dict(self._db.execute("SELECT label, COUNT(*) FROM samples GROUP BY label ORDER BY label"))

    def labels(self) -> list[str]:
        return list(self.counts())

    def __len__(self) -> int:
        with self._lock, self._errors("cannot read the sample index"):
            return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def list(self, label: Optional[str] = None) -> list[Sample]:
        q = "SELECT id, label, path, sha256, source, time, embedding IS NOT NULL FROM samples"
        args: tuple = ()
        if label is not None:
            q += " WHERE label = ?"
            args = (validate_label(label),)
        with self._lock, self._errors("cannot read the sample index"):
            rows = self._db.execute(q + " ORDER BY id", args).fetchall()
        return [Sample(r[0], r[1], self.root / r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    def stats(self) -> dict:
        with self._lock, self._errors("cannot read the sample index"):
            by_bb = dict(self._db.execute(
                "SELECT COALESCE(backbone_sha256, ''), COUNT(*) FROM samples GROUP BY 1"))
        return {"total": len(self), "per_label": self.counts(), "bytes": self._scan_bytes(),
                "embeddings": {k[:12] or "none": v for k, v in by_bb.items()},
                "root": str(self.root)}

    def export(self, dest: Path | str, label: Optional[str] = None) -> dict[str, int]:
        """Copy samples into DEST/<label>/*.jpg (a dataset `fingercount-convert build --data` reads)."""
        dest = Path(dest)
        # Inside the store, the copies would be samples of a label named after the folder
        # (a later `samples remove` deletes them); around it, the store would be in the dataset.
        where, root = Path(os.path.realpath(dest)), Path(os.path.realpath(self.root))
        overlap = ("is" if where == root else "is inside" if root in where.parents
                   else "contains" if where in root.parents else None)
        if overlap:
            raise SampleError(f"{dest} {overlap} the sample store's folder {self.root}: "
                              "export into a folder outside it")
        # Into a used folder, files of removed samples or other data would stay beside the
        # export, and a dataset built from it would train on them.
        try:
            used = dest.is_dir() and any(dest.iterdir())
        except OSError as e:
            raise SampleError(f"cannot read {dest}: {e.strerror or e}") from e
        if used:
            raise SampleError(f"{dest} is not empty: export into a new or empty folder")
        if dest.exists() and not dest.is_dir():
            raise SampleError(f"{dest} is not a folder")
        out: dict[str, int] = {}
        todo = self.list(label)
        for s in todo:
            target = dest / s.label / s.path.name
            tmp = target.with_name("." + target.name + TMP_SUFFIX)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(s.path, tmp)
                os.replace(tmp, target)
            except OSError as e:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)  # no partial copy left behind
                raise SampleError(f"export to {dest} failed after {sum(out.values())} of {len(todo)} "
                                  f"samples ({counts_text(out)} exported): {e.strerror or e}") from e
            out[s.label] = out.get(s.label, 0) + 1
        return out

    def read_frame(self, sample: Sample) -> np.ndarray:
        bgr = cv2.imread(str(sample.path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SampleError(f"{sample.path}: not a readable image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    # ---- embeddings --------------------------------------------------------------

    def ensure_embeddings(self, embedder: Embedder, deadline: Optional[float] = None,
                          progress: Optional[Callable[[int, int], None]] = None) -> int:
        """Compute embeddings missing for this backbone; returns how many were computed.

        Cached rows made by the same backbone (sha256) are reused. Work done before a
        deadline is kept, so a later call continues where this one stopped.
        """
        with self._lock, self._errors("cannot read the sample index"):
            todo = self._db.execute(
                "SELECT id, path FROM samples WHERE backbone_sha256 IS NOT ? ORDER BY id",
                (embedder.sha256,)).fetchall()
        done = 0
        for i, (row_id, rel) in enumerate(todo):
            if deadline is not None and time.monotonic() > deadline:
                raise SampleError(f"time limit reached after embedding {done} of {len(todo)} samples "
                                  "(they are kept; run retrain again to continue)")
            bgr = cv2.imread(str(self.root / rel), cv2.IMREAD_COLOR)
            if bgr is None:
                log.warning("skipping unreadable sample %s", rel)
                continue
            emb = embedder.embed_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            # None (no hand in it, for a model behind the hand stage): marked done, left out
            blob = None if emb is None else np.asarray(emb, np.float32).tobytes()
            with self._lock, self._errors(f"cannot store an embedding ({done} of {len(todo)} kept)"):
                self._db.execute("UPDATE samples SET embedding = ?, backbone_sha256 = ? WHERE id = ?",
                                 (blob, embedder.sha256, row_id))
            done += 1
            if progress is not None:
                progress(i + 1, len(todo))
        return done

    def without_embedding(self, backbone_sha256: str) -> int:
        """How many samples this embedder looked at and left out (no hand in them)."""
        with self._lock, self._errors("cannot read the sample index"):
            return int(self._db.execute("SELECT COUNT(*) FROM samples WHERE backbone_sha256 = ? AND "
                                        "embedding IS NULL", (backbone_sha256,)).fetchone()[0])

    def embeddings(self, backbone_sha256: str) -> tuple[builtins.list[Sample], np.ndarray]:
        """(samples, float32 N x D) of every sample embedded by this backbone."""
        with self._lock, self._errors("cannot read the sample index"):
            rows = self._db.execute(
                "SELECT id, label, path, sha256, source, time, embedding FROM samples "
                "WHERE backbone_sha256 = ? AND embedding IS NOT NULL ORDER BY id",
                (backbone_sha256,)).fetchall()
        samples = [Sample(r[0], r[1], self.root / r[2], r[3], r[4], r[5], True) for r in rows]
        if not rows:
            return samples, np.zeros((0, 0), np.float32)
        return samples, np.stack([np.frombuffer(r[6], np.float32) for r in rows])


    # ---- hands (landmark counters) ----------------------------------------------------

    def _write_hand(self, row_id: int, hand: StoredHand) -> None:
        self._db.execute("UPDATE samples SET landmarks = ?, handedness = ?, hand_score = ?, hand_model = ?, "
                         "features = NULL, feature_version = NULL WHERE id = ?", (*_hand_values(hand), row_id))

    def ensure_hands(self, finder: HandFinder, deadline: Optional[float] = None,
                     progress: Optional[Callable[[int, int], None]] = None) -> int:
        """Run the hand stage on samples it has not looked at (captures that stored their
        hand need nothing); returns how many. Work before a deadline is kept."""
        with self._lock, self._errors("cannot read the sample index"):
            todo = self._db.execute("SELECT id, path FROM samples WHERE hand_model IS NOT ? ORDER BY id",
                                    (finder.hand_model,)).fetchall()
        done = 0
        for i, (row_id, rel) in enumerate(todo):
            if deadline is not None and time.monotonic() > deadline:
                raise SampleError(f"time limit reached after finding the hand in {done} of {len(todo)} "
                                  "samples (they are kept; run retrain again to continue)")
            bgr = cv2.imread(str(self.root / rel), cv2.IMREAD_COLOR)
            if bgr is None:
                log.warning("skipping unreadable sample %s", rel)
                continue
            hand = finder.find_hand(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            with self._lock, self._errors(f"cannot store a hand ({done} of {len(todo)} kept)"):
                self._write_hand(row_id, hand)
            done += 1
            if progress is not None:
                progress(i + 1, len(todo))
        return done

    def hands(self, hand_model: str) -> builtins.list[tuple[Sample, StoredHand, Optional[tuple[str, bytes]]]]:
        """Every sample the hand stage `hand_model` looked at: (sample, its hand, stored
        (feature_version, features bytes) or None)."""
        with self._lock, self._errors("cannot read the sample index"):
            rows = self._db.execute(
                "SELECT id, label, path, sha256, source, time, landmarks, handedness, hand_score, "
                "features, feature_version FROM samples WHERE hand_model = ? ORDER BY id",
                (hand_model,)).fetchall()
        return [(Sample(r[0], r[1], self.root / r[2], r[3], r[4], r[5]),
                 StoredHand(hand_model, None if r[6] is None else np.frombuffer(r[6], np.float32).reshape(21, 3),
                            r[7] or "", float(r[8] or 0.0)),
                 None if r[9] is None else (r[10], r[9])) for r in rows]

    def set_features(self, items: Iterable[tuple[int, str, np.ndarray]]) -> None:
        """Store (sample id, feature version, features) made from the stored landmarks."""
        with self._lock, self._errors("cannot store landmark features"), transaction(self._db):
            self._db.executemany("UPDATE samples SET features = ?, feature_version = ? WHERE id = ?",
                                 [(np.asarray(f, np.float32).tobytes(), v, i) for i, v, f in items])


def _hand_values(hand: Optional[StoredHand]) -> tuple:
    """(landmarks bytes, handedness, score, hand_model) for the index; all None without a hand record."""
    if hand is None:
        return None, None, None, None
    lm = None if hand.landmarks is None else np.asarray(hand.landmarks, np.float32).reshape(21, 3).tobytes()
    return lm, hand.handedness, float(hand.score), hand.hand_model


class HandFinder(Protocol):
    """What ensure_hands needs of the hand stage (edge.sample_features.LandmarkFeatures)."""

    hand_model: str

    def find_hand(self, frame: np.ndarray) -> StoredHand: ...


def open_store(cfg: Config) -> SampleStore:
    """The configured state_dir's store with the configured quota."""
    return SampleStore(cfg.state_dir, max_mb=cfg.samples.max_mb, min_free_mb=cfg.samples.min_free_mb,
                       max_labels=cfg.samples.max_labels)


def iter_images(root: Path | str) -> Iterator[tuple[str, Path]]:
    """(label, path) for every image in class folders under root."""
    for d in sorted(Path(root).iterdir()):
        if d.is_dir():
            for f in sorted(d.iterdir()):
                if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"):
                    yield d.name, f


def counts_text(counts: Iterable[tuple[str, int]] | dict[str, int]) -> str:
    items = counts.items() if isinstance(counts, dict) else counts
    return ", ".join(f"{k}: {v}" for k, v in items) or "none"
