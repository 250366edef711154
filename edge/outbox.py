"""Bounded, ordered, durable outbox for QoS 1 messages (count, events, command results).

A message stays here until the broker acknowledged it (PUBACK). While disconnected nothing
leaves; when full the oldest message is dropped and counted. After a reconnect everything
not yet acknowledged is sent again from the head, so order holds (QoS 1 may duplicate; it
never reorders). A retained message is state, not history: a newer one to the same topic
removes the queued one not yet handed to the connection (counted in `superseded`), so an
outage ends with the newest count, not a burst of stale ones taking half the room.

Durability: with a path (the daemon uses `<state_dir>/outbox.sqlite`) every put is one short
SQLite transaction (WAL, synchronous=FULL), so a put that returned survives kill -9 and a
power cut; the memory queue is a mirror of the table for the network thread. An SD card
wears with every small synchronous write, so the rows of acknowledged messages are deleted
with the next put (or within ACK_FLUSH_S): a count change costs one transaction, not four.
A power cut in between sends those messages once more after the restart (QoS 1 is at least
once). Only this process opens the file (SQLite's exclusive locking mode): there is no
memory-mapped -shm, which killed the daemon with SIGBUS when the card went read-only, and a
second daemon with the same state_dir gets a clear warning and keeps its queue in memory.
The dropped total is stored too. On open, the messages a previous run left are queued
first, oldest first, and go out after `online` like any others, except **retained** ones
(the `count`): the new run publishes its own state at start, so an old one would only make
the broker show a stale count for a moment. They are deleted at open and counted in
`superseded` too; the history they summarise is in the `count_changed` events, which are
delivered.

If the file cannot be used (state_dir not writable, disk full, I/O error) the outbox logs one
warning and keeps working in memory only (`persistent` False). A device runs for months, and
a disk that filled up is often freed again, so every `retry_s` (at a put or a reconnect) it
tries the file again; when that works the file is rewritten to hold exactly the queue, in
order, and the outbox is durable again (logged once). A file deleted or replaced while in
use (`rm -rf` of the state dir) is noticed within CHECK_S (at a put, a reconnect, or the
link's periodic check) and a new one is made at the path with the queue (logged once). A
corrupt file is moved aside as `outbox.sqlite.corrupt-<ts>` (the newest KEEP_CORRUPT are
kept) and an empty one is started.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from edge.sqlite_files import (
    DamagedFile,
    connect,
    file_id,
    open_or_replace,
    transaction,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RETRY_S = 60.0  # memory only since a failure: how often to try the file again
ACK_FLUSH_S = 10.0  # acknowledged rows are deleted at the next put, or after this at the latest
BUSY_TIMEOUT_S = 0.2  # the file is locked only by another process, which keeps it locked
CHECK_S = 5.0  # how often to check that the open file is still the one at the path


@dataclass(eq=False)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    acked: bool = field(default=False, compare=False)
    id: Optional[int] = field(default=None, compare=False)  # row in the store, when persistent


def _schema(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise DamagedFile(f"schema version {version}, expected {SCHEMA_VERSION}")
    db.execute("CREATE TABLE IF NOT EXISTS msgs (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
               "payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


class Outbox:
    def __init__(self, maxlen: int = 1000, path: Optional[Path] = None, retry_s: float = RETRY_S):
        self.maxlen = int(maxlen)
        self.retry_s = float(retry_s)
        self._retry_at = 0.0
        self._loaded = False  # the previous run's messages in the file have joined the queue
        self._q: deque[Message] = deque()
        self._sent = 0  # the first _sent messages were handed to the current connection
        self._lock = threading.Lock()
        self.dropped = 0
        self.delivered = 0
        self.restored = 0  # messages from a previous run, queued at open
        self.superseded = 0  # retained messages replaced by a newer one (or a new run)
        self.wakeup = threading.Event()
        self.path = path
        self._db: Optional[sqlite3.Connection] = None
        self._acked_ids: list[int] = []  # acknowledged, row not deleted yet
        self._ack_flush_at = 0.0
        self._file_id: Optional[tuple[int, int]] = None  # (st_dev, st_ino) of the open file
        self._check_at = 0.0
        if path is not None:
            self._open(Path(path))

    @property
    def persistent(self) -> bool:
        return self._db is not None

    # ---- the store ---------------------------------------------------------------------
    def _open(self, path: Path) -> None:
        try:
            db = self._open_file(path)
        except (OSError, sqlite3.Error, DamagedFile) as e:
            if getattr(e, "sqlite_errorname", "") == "SQLITE_BUSY":
                e = OSError(f"{e}: another process has it open, a second fingercount with the same state_dir?")
            log.warning("outbox %s cannot be used (%s): QoS 1 messages are kept in memory only "
                        "(the file is tried again every %.0f s)", path, e, self.retry_s)
            self._retry_at = time.monotonic() + self.retry_s
            return
        self._db = db
        if self.restored or self.superseded:
            log.info("outbox: %d message(s) from the previous run to deliver, %d superseded "
                     "retained message(s) dropped", self.restored, self.superseded)

    def _open_file(self, path: Path) -> sqlite3.Connection:
        """The file, opened and made to mirror the queue; a damaged one is moved aside first."""
        path.parent.mkdir(parents=True, exist_ok=True)

        def open_db(p: Path) -> sqlite3.Connection:
            # One connection for all threads, under _lock, holding the file for good: only
            # another process could make it wait, and that one would not let go.
            db = connect(p, BUSY_TIMEOUT_S, _schema, exclusive=True)
            try:
                self._mirror(db)
            except BaseException:
                db.close()
                raise
            return db

        db, replaced = open_or_replace(path, open_db)
        if replaced is not None:
            log.warning("outbox %s is corrupt (%s): moved aside to %s; starting an empty outbox",
                        path, replaced[1], replaced[0].name)
        with contextlib.suppress(OSError):  # an older version's; we hold the file exclusively
            path.with_name(path.name + "-shm").unlink(missing_ok=True)
        self._file_id = file_id(path)
        return db

    @staticmethod
    def _read(db: sqlite3.Connection) -> tuple[int, list[Message], int]:
        """In a transaction: the previous run's messages (its retained ones deleted, and
        counted) and its dropped total."""
        superseded = db.execute("DELETE FROM msgs WHERE retain != 0").rowcount
        row = db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        rows = db.execute("SELECT id, topic, payload, qos FROM msgs ORDER BY id").fetchall()
        return superseded, [Message(t, bytes(p), q, False, id=i) for i, t, p, q in rows], \
            int(row[0]) if row else 0

    def _give_up(self, e: sqlite3.Error) -> None:
        """Called under the lock: memory only for now (the file keeps what it has)."""
        log.warning("outbox %s: %s; QoS 1 messages are kept in memory only until the file can "
                    "be written again (tried every %.0f s)", self.path, e, self.retry_s)
        db, self._db = self._db, None
        self._retry_at = time.monotonic() + self.retry_s
        try:
            if db is not None:
                db.close()
        except sqlite3.Error:
            pass

    def _maybe_resume(self) -> None:
        """Called under the lock: memory only and retry_s passed, so try the file again."""
        if self._db is not None or self.path is None or time.monotonic() < self._retry_at:
            return
        self._retry_at = time.monotonic() + self.retry_s
        try:
            self._db = self._open_file(Path(self.path))
        except (OSError, sqlite3.Error, DamagedFile) as e:
            log.debug("outbox %s still cannot be used: %s", self.path, e)
            return
        log.warning("outbox %s: writable again; %d queued message(s) are durable again",
                    self.path, sum(1 for m in self._q if not m.acked))

    def check(self) -> None:
        """At most every CHECK_S: is the open file still the one at the path? A deleted state
        dir (rm -rf) left us writing to a deleted file, which a power cut then lost."""
        if time.monotonic() >= self._check_at:
            with self._lock:
                self._check_file()

    def _check_file(self) -> None:
        """Called under the lock: the file at the path gone or replaced, so a new file there
        (and its dir) gets the queue."""
        if self._db is None or self.path is None or time.monotonic() < self._check_at:
            return
        self._check_at = time.monotonic() + CHECK_S
        try:
            if file_id(Path(self.path)) == self._file_id:
                return
        except OSError:  # cannot tell (an I/O error): a write will say more
            return
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._db, queued = None, sum(1 for m in self._q if not m.acked)
        try:
            self._db = self._open_file(Path(self.path))
        except (OSError, sqlite3.Error, DamagedFile) as e:
            self._retry_at = time.monotonic() + self.retry_s
            log.warning("outbox %s was deleted or replaced while in use and cannot be made again "
                        "(%s): %d queued message(s) are kept in memory only (tried again every "
                        "%.0f s)", self.path, e, queued, self.retry_s)
            return
        log.warning("outbox %s was deleted or replaced while in use: its %d queued message(s) "
                    "are in a new file there", self.path, queued)

    def _mirror(self, db: sqlite3.Connection) -> None:
        """Make the file hold exactly the unacknowledged queue, in order, in one transaction.

        The first time (at open, or at the first resume when the open failed) the previous
        run's messages in it join the queue first, right after what is in flight; the oldest
        beyond maxlen (outbox_max lowered since) are dropped and counted."""
        q, dropped, superseded = list(self._q), self.dropped, 0
        previous: list[Message] = []
        with transaction(db):
            if not self._loaded:
                superseded, previous, before = self._read(db)
                room = self.maxlen - len(q)
                dropped += before + max(0, len(previous) - room)
                previous = previous[max(0, len(previous) - room):]
                q[self._sent:self._sent] = previous
            db.execute("DELETE FROM msgs")  # rows since acked or dropped in memory
            ids = [None if m.acked else db.execute(
                "INSERT INTO msgs (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                (m.topic, m.payload, m.qos, int(m.retain))).lastrowid for m in q]
            db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped', ?)", (dropped,))
        for m, i in zip(q, ids):
            m.id = i
        self._acked_ids = []  # the file now holds exactly the unacknowledged queue
        self._q, self.dropped = deque(q), dropped
        if not self._loaded:
            self._loaded, self.restored = True, len(previous)
            self.superseded += superseded

    # ---- the queue ---------------------------------------------------------------------
    def put(self, msg: Message) -> None:
        self.put_many([msg])

    def put_many(self, msgs: list[Message]) -> None:
        """Queue messages in order, durable in one transaction (a count and its event: one
        write to the card, not two). Deletes of acknowledged rows ride along."""
        with self._lock:
            self._check_file()
            self._maybe_resume()
            msgs, stale = self._supersede(msgs)
            evicted: list[Message] = []
            for k in range(len(msgs)):  # the oldest make room, as if put one by one
                if len(self._q) + k - len(evicted) >= self.maxlen:
                    evicted.append(self._q[len(evicted)])
            lost = sum(1 for m in evicted if not m.acked)
            if self._db is not None:
                gone = [m.id for m in evicted + stale if m.id is not None] + self._acked_ids
                try:
                    with transaction(self._db) as db:
                        self._delete(gone)
                        if lost:
                            db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped', ?)", (self.dropped + lost,))
                        for msg in msgs:
                            msg.id = db.execute(
                                "INSERT INTO msgs (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                                (msg.topic, msg.payload, msg.qos, int(msg.retain))).lastrowid
                    self._acked_ids = []
                    self._ack_flush_at = time.monotonic() + ACK_FLUSH_S
                except sqlite3.Error as e:
                    for msg in msgs:
                        msg.id = None
                    self._give_up(e)
            for _ in evicted:
                self._q.popleft()
                if self._sent:
                    self._sent -= 1
            self.dropped += lost
            self._q.extend(msgs)
        self.wakeup.set()

    def _supersede(self, msgs: list[Message]) -> tuple[list[Message], list[Message]]:
        """Called under the lock: a retained message replaces the older retained ones to its
        topic that are queued but not handed to the connection (those in flight stay, for
        their PUBACK). After an outage the broker gets the newest count, not every one in
        between; the events keep the history. One the link is publishing right now (between
        next_unsent and mark_sent) still goes out, and its PUBACK finds it gone: harmless.
        Returns msgs and the removed, already queued."""
        newest = {m.topic: m for m in msgs if m.retain}
        if not newest:
            return msgs, []
        kept = [m for m in msgs if not m.retain or newest[m.topic] is m]
        keep: deque[Message] = deque()
        stale: list[Message] = []
        for k, m in enumerate(self._q):
            (stale if k >= self._sent and m.retain and m.topic in newest else keep).append(m)
        if stale:
            self._q = keep  # the rest keep their order
        self.superseded += len(stale) + len(msgs) - len(kept)
        return kept, stale

    def _delete(self, ids: list[int]) -> None:
        assert self._db is not None  # callers hold the lock and checked it
        for i in range(0, len(ids), 500):  # SQLite's limit on bound parameters
            chunk = ids[i:i + 500]
            self._db.execute(f"DELETE FROM msgs WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for m in self._q if not m.acked)

    @property
    def in_flight(self) -> int:
        return self._sent

    def next_unsent(self) -> Optional[Message]:
        with self._lock:
            return self._q[self._sent] if self._sent < len(self._q) else None

    def mark_sent(self, msg: Message) -> None:
        with self._lock:
            if self._sent < len(self._q) and self._q[self._sent] is msg:
                self._sent += 1

    def ack(self, msg: Message) -> None:
        """The broker has it. Its row is deleted with the next put, or within ACK_FLUSH_S:
        one write to the card per burst, not one per message. A power cut before that
        re-sends it once after the restart, which QoS 1 allows."""
        with self._lock:
            if msg.acked:
                return
            msg.acked = True
            self.delivered += 1
            if self._db is not None and msg.id is not None:
                self._acked_ids.append(msg.id)
                if time.monotonic() >= self._ack_flush_at:
                    self._flush_acks()
            while self._q and self._q[0].acked and self._sent:
                self._q.popleft()
                self._sent -= 1

    def _flush_acks(self) -> None:
        """Called under the lock: delete the acknowledged rows now."""
        self._ack_flush_at = time.monotonic() + ACK_FLUSH_S
        if self._db is None or not self._acked_ids:
            return
        try:
            with transaction(self._db):
                self._delete(self._acked_ids)
            self._acked_ids = []
        except sqlite3.Error as e:
            self._give_up(e)

    def rewind(self) -> None:
        """A new connection: resend everything not acknowledged, from the oldest."""
        with self._lock:
            self._q = deque(m for m in self._q if not m.acked)
            self._sent = 0
            self._check_file()
            self._maybe_resume()
        self.wakeup.set()

    def close(self) -> None:
        """Close the file (what is in it stays for the next start); memory only afterwards."""
        with self._lock:
            self._flush_acks()
            db, self._db = self._db, None
            self._retry_at = math.inf
        if db is not None:
            db.close()
